"""Scenarios: a load timeline with faults at given times on given instances, and their rollbacks."""
