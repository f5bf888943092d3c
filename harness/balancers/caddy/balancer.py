"""Runs the real caddy binary on a generated JSON config inside the run directory."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from harness.balancers.caddy.config import CaddyConfig, caddy_binary
from harness.balancers.caddy.render import RenderSettings, render
from harness.balancers.process import BalancerContainer, BalancerProcess
from harness.errors import AddressInUseError, ConfigError, StartupError
from harness.load.route import FixedRoute
from harness.net import LOOPBACK, accepts_connections, free_port, port_is_free
from harness.readiness import WaitStrategy, tail
from harness.runtimes.base import Instance


def caddy_version() -> str:
    done = subprocess.run([caddy_binary(), "version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().split(" ")[0]


class CaddyBalancer(BalancerProcess):
    """One caddy process for one run; a context manager. Reloads go through its admin endpoint."""

    name = "caddy"
    reload_signal = signal.SIGUSR1  # unused: Caddy reloads through its admin API
    stop_signal = signal.SIGTERM  # graceful: Caddy finishes its requests, then exits

    def __init__(
        self,
        config: CaddyConfig,
        run_dir: Path,
        port: int | None = None,
        container: BalancerContainer | None = None,
        address: str = LOOPBACK,
    ) -> None:
        super().__init__(run_dir, port, container, address)
        self.config = config
        self.binary = caddy_binary()
        self._listens: dict[str, str] = {}
        self._admin = ""

    @property
    def config_path(self) -> Path:
        return self.run_dir / "caddy.json"

    @property
    def route(self) -> FixedRoute:
        proxy = self.config.under_test
        return self._route_at(proxy.host, proxy.prefix)

    def write_config(self, instances: Sequence[Instance]) -> Path:
        """Renders the config for ``instances`` and checks it with ``caddy validate``."""
        if not self._listens:
            servers = self.config.adapted.get("apps", {}).get("http", {}).get("servers", {})
            self._listens = {
                name: self.route_socket if name == self.config.under_test.server else f"{LOOPBACK}:{free_port()}"
                for name in servers
            }
            self._admin = f"{LOOPBACK}:{free_port()}"
        rendered, changes = render(self.config, instances, RenderSettings(self.run_dir, self._listens, self._admin))
        self.config_path.write_text(json.dumps(rendered, indent=2) + "\n")
        self.rewrites_path.write_text("".join(f"{self.config.path.name}: {c}\n" for c in changes))
        check = subprocess.run(
            [self.binary, "validate", "--config", str(self.config_path)],
            capture_output=True, text=True, check=False, env=self._environment(), timeout=60,
        )  # fmt: skip
        if check.returncode != 0:
            lines = [line for line in check.stderr.strip().splitlines() if line.strip()]
            raise ConfigError(f"caddy rejected {self.config.path}: {lines[-1] if lines else 'caddy validate failed'}")
        return self.config_path

    def _environment(self) -> dict[str, str]:
        # Caddy keeps its instance id and autosaved config under XDG folders: the run's own.
        home = self.run_dir / "caddy-home"
        return {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"), "HOME": str(home)}

    def start(self, instances: Sequence[Instance]) -> None:
        self.port = self.requested_port or free_port(self.address)
        self._listens = {}
        if not port_is_free(self.address, self.port):
            raise AddressInUseError(f"{self.route_socket} is already in use: choose another --port or leave it out")
        self.write_config(instances)
        log = self.run_dir / "caddy.stderr.log"
        self._process = self._spawn(
            [self.binary, "run", "--config", str(self.config_path)], log, env=self._environment()
        )
        WaitStrategy(f"caddy on {self.route_socket}", timeout=10.0, log=log).wait(self._accepting)

    def _accepting(self) -> bool | None:
        assert self._process is not None
        if self._process.poll() is not None:
            last = tail(self.run_dir / "caddy.stderr.log", 3)
            raise StartupError(f"caddy exited with code {self._process.returncode}: {last}")
        return accepts_connections(self.reach, self.port)

    def reload(self, instances: Sequence[Instance]) -> float:
        """Loads the config for ``instances`` through the admin endpoint; returns the seconds it took.

        Caddy answers once the new config runs; the old one's connections finish on their own."""
        started = time.monotonic()
        self.write_config(instances)
        request = urllib.request.Request(
            f"http://{self._admin}/load", data=self.config_path.read_bytes(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
        return time.monotonic() - started
