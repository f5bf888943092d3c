"""Runs the real nginx binary on a generated config inside the run directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.balancers.nginx.config import NginxConfig, RenderSettings, render
from harness.balancers.process import BalancerContainer, BalancerProcess
from harness.errors import AddressInUseError, ConfigError, StartupError, ToolMissingError
from harness.net import LOOPBACK, accepts_connections, free_port, port_is_free
from harness.readiness import WaitStrategy, tail
from harness.runtimes.base import Instance

INSTALL_HINT = "install it with `apt-get install -y nginx-light` (or run `make setup`)"


def nginx_binary() -> str:
    """The nginx executable ($HARNESS_NGINX, else from PATH); raises ToolMissingError with how to install it."""
    chosen = os.environ.get("HARNESS_NGINX")
    if chosen:
        if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
            raise ToolMissingError(f"HARNESS_NGINX={chosen} is not an executable nginx: {INSTALL_HINT}")
        return chosen
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
    )
    if found is None:
        raise ToolMissingError(f"nginx is not installed: {INSTALL_HINT}")
    return found


def nginx_version() -> str:
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().removeprefix("nginx version: ")


class NginxBalancer(BalancerProcess):
    """One nginx master (and its workers) for one run; a context manager."""

    name = "nginx"
    reload_signal = signal.SIGHUP
    stop_signal = signal.SIGQUIT  # graceful: workers finish their requests

    def __init__(
        self,
        config: NginxConfig,
        run_dir: Path,
        workers: int = 1,
        zone: bool = False,
        weights: dict[str, int] | None = None,
        port: int | None = None,
        start_timeout: float = 10.0,
        container: BalancerContainer | None = None,
    ) -> None:
        super().__init__(run_dir, port, container)
        self.config = config
        self.workers = workers
        self.zone = zone
        self.weights = weights
        self.start_timeout = start_timeout
        self.binary = nginx_binary()

    @property
    def config_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "error.log"

    def _command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.run_dir), "-e", str(self.error_log), "-c", str(self.config_path), *extra]

    def write_config(self, instances: Sequence[Instance]) -> Path:
        """Renders the config for ``instances`` on ``self.port`` and checks it with ``nginx -t``."""
        settings = RenderSettings(
            run_dir=self.run_dir,
            listen=f"{LOOPBACK}:{self.port}",
            workers=self.workers,
            zone=self.zone,
            weights=self.weights,
        )
        (self.run_dir / "temp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.config, instances, settings))
        check = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True, check=False)
        if check.returncode != 0:
            message = " ".join(line.removeprefix("nginx: ") for line in check.stderr.strip().splitlines())
            raise ConfigError(f"nginx rejected {self.config.path}: {message}")
        return self.config_path

    def start(self, instances: Sequence[Instance]) -> None:
        # A port the kernel called free can be taken before nginx binds it (another run
        # starting at the same moment); a port the harness chose is then chosen again.
        attempts = 1 if self.requested_port else 3
        for attempt in range(1, attempts + 1):
            self.port = self.requested_port or free_port()
            if not port_is_free(LOOPBACK, self.port):
                raise AddressInUseError(
                    f"{LOOPBACK}:{self.port} is already in use: choose another --port or leave it out"
                )
            self.write_config(instances)
            self._process = self._spawn(self._command(), self.run_dir / "nginx.stderr.log")
            wait = WaitStrategy(f"nginx on {LOOPBACK}:{self.port}", timeout=self.start_timeout, log=self.error_log)
            try:
                wait.wait(self._accepting)
                return
            except AddressInUseError:
                self.stop()
                if attempt == attempts:
                    raise

    def reload(self, instances: Sequence[Instance]) -> float:
        """Points nginx at ``instances`` with a graceful reload; returns the seconds it took.

        The new config is checked with ``nginx -t`` first (a rejected config raises
        ConfigError and nginx keeps running the old one). Returns once the old workers have
        finished their requests and exited, so instances removed from the config can be
        stopped without cutting a request.
        """
        self.write_config(instances)
        return self._replace_workers(self.error_log)

    def _accepting(self) -> bool | None:
        assert self._process is not None
        if self._process.poll() is not None:
            last = tail(self.error_log, 3)
            if "Address already in use" in last:
                raise AddressInUseError(f"nginx cannot listen on {LOOPBACK}:{self.port}: address already in use")
            raise StartupError(f"nginx exited with code {self._process.returncode}: {last}")
        return accepts_connections(LOOPBACK, self.port)
