"""Loading a config, checking the binary, naming the version and making a balancer, by balancer name."""

from __future__ import annotations

from pathlib import Path

from harness.balancers.base import Balancer, BalancerConfig
from harness.balancers.kind import BalancerSettings
from harness.balancers.process import BalancerContainer
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


def make_balancer(
    config: BalancerConfig,
    run_dir: Path,
    workers: int,
    zone: bool,
    weights: dict[str, int] | None,
    port: int | None,
    container: BalancerContainer | None = None,
) -> Balancer:
    """The balancer for ``config``, not started yet; in a container of ``container`` if given."""
    settings = BalancerSettings(workers, zone, weights, port, container)
    return kind_of(config.balancer).make(config, run_dir, settings)
