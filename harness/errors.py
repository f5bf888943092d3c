"""The harness's errors: one root, a small tree, and the exit code each maps to.

    HarnessError                  exit 1   something went wrong while running
    ├── BadInputError             exit 2   the user asked for something invalid
    │   ├── SpecError                      a run option that cannot work
    │   ├── ConfigError                    a balancer config that is unreadable or rejected
    │   ├── ToolMissingError               nginx (or another tool) is not installed
    │   └── AddressInUseError              a port or address is taken
    └── StartupError              exit 3   a part did not become ready in time

A failing check is not an error: ``harness bench`` exits 1 when a verdict fails.
"""

from __future__ import annotations


class HarnessError(Exception):
    exit_code = 1


class BadInputError(HarnessError):
    exit_code = 2


class SpecError(BadInputError):
    pass


class ConfigError(BadInputError):
    pass


class ToolMissingError(BadInputError):
    pass


class AddressInUseError(BadInputError):
    pass


class StartupError(HarnessError):
    exit_code = 3
