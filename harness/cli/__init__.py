"""The ``harness`` command: a thin front end that builds a spec and calls the library."""
