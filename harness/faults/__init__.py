"""Faults injected into one instance (or the cluster: a scale, a reload), each with the rollback
that undoes it. Their kinds, parameters and check families are declared in ``harness.results.faults``."""
