"""Checks: pure functions over what a run recorded, each returning a Verdict with its numbers.

They need no cluster, so unit tests feed them synthetic data.
"""
