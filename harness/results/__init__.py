"""Run directories: what a run recorded, written as it happens so an interruption keeps it."""
