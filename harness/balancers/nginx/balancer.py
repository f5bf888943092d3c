"""Runs nginx on the config rendered from the user's (or the shipped one) inside the run directory."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.balancers.nginx.config import NginxConfig
from harness.balancers.nginx.messages import in_users_terms
from harness.balancers.nginx.parse import Origin
from harness.balancers.nginx.render import RenderSettings, plan_listens, render_config
from harness.balancers.process import BalancerContainer, BalancerProcess
from harness.balancers.tls import RunCertificates
from harness.checks.listens import answers_redirect
from harness.checks.verdict import Verdict
from harness.errors import AddressInUseError, ConfigError, StartupError, ToolMissingError
from harness.load import probes
from harness.load.route import FixedRoute
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
        address: str = LOOPBACK,
    ) -> None:
        super().__init__(run_dir, port, container, address)
        self.config = config
        self.workers = workers
        self.zone = zone
        self.weights = weights
        self.start_timeout = start_timeout
        self.binary = nginx_binary()
        self._listens: dict[str, str] = {}
        self.certificates: RunCertificates | None = None
        self.rewrites: list[tuple[Origin | None, str]] = []

    @property
    def config_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "error.log"

    def route_tls_ca(self) -> Path | None:
        route = self.config.route
        return self.certificates.ca_file if route and route.server.ssl and self.certificates else None

    @property
    def route(self) -> FixedRoute:
        """The balancer's address on the route under test, with the Host and path prefix it routes on."""
        route = self.config.route
        at = self._route_at(route.server.host if route else None, (route.path_prefix or "/") if route else "/")
        return dataclasses.replace(at, grpc=self.config.speaks_grpc, http2=self.config.speaks_http2)

    @property
    def listens(self) -> dict[str, str]:
        """Each listen of the user's config (by its key, ``80`` or ``443``) and the loopback socket it has here."""
        return dict(self._listens)

    def listen_checks(self) -> list[Verdict]:
        """Each server that only redirects answers its redirect on its own listen."""
        verdicts = []
        for server in self.config.servers:
            if not (server.redirects_only and server.redirect and server.listens):
                continue
            status, target, where = server.redirect
            listen = server.listens[0]
            tls = listen.ssl or server.ssl_on
            scheme = "https" if tls else "http"
            host = server.host or "localhost"
            route = FixedRoute(
                f"{scheme}://{self._listens[listen.key]}", host=host,
                ca_file=self.certificates.ca_file if self.certificates and tls else None,
            )  # fmt: skip
            answer = probes.get_answer(route, "/api/count")
            expected = _fill(target, host=host, names=server.names, uri="/api/count", scheme=scheme)
            verdicts.append(
                answers_redirect(
                    listen.key, host, answer.status, answer.header("Location"), status, expected, str(where)
                )
            )
        return verdicts

    def _command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.run_dir), "-e", str(self.error_log), "-c", str(self.config_path), *extra]

    def _plan_listens(self) -> None:
        """The route's listen on the balancer's port; every other listen of the config on a free port."""
        self._listens = plan_listens(self.config, self.route_socket, lambda: f"{LOOPBACK}:{free_port()}")
        if any(server.ssl_on or any(listen.ssl for listen in server.listens) for server in self.config.servers):
            self.certificates = self.certificates or RunCertificates(self.run_dir / "tls", self.address_names)

    def write_config(self, instances: Sequence[Instance]) -> Path:
        """Renders the config for ``instances`` on ``self.port`` and checks it with ``nginx -t``."""
        if not self._listens:
            self._plan_listens()
        settings = RenderSettings(
            run_dir=self.run_dir,
            listen=self.route_socket,
            workers=self.workers,
            zone=self.zone,
            weights=self.weights,
            listens=self._listens,
            certificates=self.certificates,
        )
        (self.run_dir / "temp").mkdir(parents=True, exist_ok=True)
        rendered = render_config(self.config, instances, settings)
        self.config_path.write_text(rendered.text)
        self.rewrites_path.write_text(rendered.rewrites_text())
        self.rewrites = rendered.rewrites
        check = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True, check=False)
        if check.returncode != 0:
            message = " ".join(line.removeprefix("nginx: ") for line in check.stderr.strip().splitlines())
            raise ConfigError(
                f"nginx rejected {self.config.path}: {in_users_terms(message, self.config_path, rendered.tree)}"
            )
        return self.config_path

    def start(self, instances: Sequence[Instance]) -> None:
        # A port the kernel called free can be taken before nginx binds it (another run
        # starting at the same moment); a port the harness chose is then chosen again.
        attempts = 1 if self.requested_port else 3
        for attempt in range(1, attempts + 1):
            self.port = self.requested_port or free_port(self.address)
            self._listens = {}
            if not port_is_free(self.address, self.port):
                raise AddressInUseError(f"{self.route_socket} is already in use: choose another --port or leave it out")
            self.write_config(instances)
            self._process = self._spawn(self._command(), self.run_dir / "nginx.stderr.log")
            wait = WaitStrategy(f"nginx on {self.route_socket}", timeout=self.start_timeout, log=self.error_log)
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
                raise AddressInUseError(f"nginx cannot listen on {self.route_socket}: address already in use")
            raise StartupError(f"nginx exited with code {self._process.returncode}: {last}")
        return accepts_connections(self.reach, self.port)


def _fill(target: str, host: str, names: tuple[str, ...], uri: str, scheme: str) -> str:
    """A ``return`` URL as nginx fills it for a request of ``uri`` with Host ``host``."""
    values = {"host": host, "http_host": host, "server_name": names[0] if names else "", "request_uri": uri,
              "uri": uri, "scheme": scheme}  # fmt: skip
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), target)
