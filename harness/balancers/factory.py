"""Loading a config, checking the binary and naming the version, by balancer name."""

from __future__ import annotations

from pathlib import Path

from harness.balancers.base import BalancerConfig
from harness.balancers.registry import kind_of


def load_balancer_config(
    balancer: str, path: Path, upstream: str | None = None, route: str | None = None
) -> BalancerConfig:
    """Parses ``path`` as a config of ``balancer``; ConfigError when it cannot.

    ``upstream`` (an nginx upstream, a HAProxy backend) and ``route`` (``HOST/PATH``) choose the
    group under test and the way the load reaches it.
    """
    return kind_of(balancer).load_config(path, upstream, route)


def check_installed(balancer: str) -> None:
    """Raises ToolMissingError, saying how to install it, when the balancer's binary is missing."""
    kind_of(balancer).check_installed()


def version(balancer: str) -> str:
    return kind_of(balancer).version()
