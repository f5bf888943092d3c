"""Faults injected into one instance, each with the rollback that undoes it."""
