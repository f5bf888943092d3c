"""Runs the real haproxy binary (master-worker, foreground) on a generated config in the run directory."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from harness.balancers.haproxy.config import HaproxyConfig
from harness.balancers.haproxy.render import RenderSettings, plan_listens, render_config
from harness.balancers.haproxy.routing import Request
from harness.balancers.haproxy.runtime_servers import add_servers, additions
from harness.balancers.origin import Origin
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

INSTALL_HINT = "install it with `apt-get install -y haproxy` (or run `make setup`)"
# `show servers state` columns: srv_op_state 0 stopped (DOWN), 1 starting, 2 running (UP), 3 stopping.
_OP_STATES = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}


def haproxy_binary() -> str:
    """The haproxy executable ($HARNESS_HAPROXY, else from PATH); ToolMissingError says how to install it."""
    chosen = os.environ.get("HARNESS_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
        raise ToolMissingError(f"haproxy is not installed: {INSTALL_HINT}")
    return chosen


def haproxy_version() -> str:
    result = subprocess.run([haproxy_binary(), "-v"], capture_output=True, text=True, check=False)
    first = result.stdout.splitlines()[0] if result.stdout else ""
    return first.removeprefix("HAProxy version ").split(" ")[0]


class HaproxyBalancer(BalancerProcess):
    """One HAProxy master and its worker for one run; a context manager."""

    name = "haproxy"
    reload_signal = signal.SIGUSR2  # master-worker: a new worker, the old one finishes its requests
    stop_signal = signal.SIGUSR1  # soft stop: the worker finishes its requests, then exits

    def __init__(
        self,
        config: HaproxyConfig,
        run_dir: Path,
        weights: dict[str, int] | None = None,
        port: int | None = None,
        start_timeout: float = 10.0,
        container: BalancerContainer | None = None,
        address: str = LOOPBACK,
    ) -> None:
        super().__init__(run_dir, port, container, address)
        self.config = config
        self.weights = weights
        self.start_timeout = start_timeout
        self.binary = haproxy_binary()
        self._socket_name = f"lb-harness-{os.getpid()}-{secrets.token_hex(4)}"
        self.changed_in_place: list[float] = []  # when servers joined the running worker (no reload)
        self.runtime_refusals: list[str] = []  # why the runtime API refused one (then it reloaded)
        self._listens: dict[str, str] = {}
        self.certificates: RunCertificates | None = None
        self.rewrites: list[tuple[Origin | None, str]] = []

    @property
    def config_path(self) -> Path:
        return self.run_dir / "haproxy.cfg"

    def route_tls_ca(self) -> Path | None:
        route = self.config.route
        return self.certificates.ca_file if route and route.bind.ssl and self.certificates else None

    @property
    def route(self) -> FixedRoute:
        """The balancer's address on the route under test, with the Host and path it routes on."""
        route = self.config.route
        at = self._route_at(route.request.host if route else None, route.prefix if route else "/")
        return dataclasses.replace(at, grpc=self.config.speaks_grpc, http2=self.config.speaks_http2)

    @property
    def listens(self) -> dict[str, str]:
        """Each bind of the user's config (by its key, ``web :80``) and the loopback socket it has here."""
        return dict(self._listens)

    def listen_checks(self) -> list[Verdict]:
        """Each frontend bind whose requests are only redirected answers its redirect."""
        verdicts = []
        for bind in self.config.binds():
            address = self._listens.get(bind.key)
            section = next(s for s in self.config.frontends() if s.name == bind.frontend)
            if self.config.mode_of(section) != "http":
                continue
            switching = self.config.switching(section)
            # The frontend's own host names, else the route's (the site's name), else localhost.
            route_host = self.config.route.request.host if self.config.route else None
            host = next(iter(switching.host_names()), route_host or "localhost")
            rule, backend, _ = switching.decide(Request(host, "/api/count", bind.ssl))
            if address is None or rule is None or rule.kind != "redirect" or backend is not None:
                continue
            expected = _redirect_target(rule.target.split(), host, "/api/count")
            if expected is None:
                continue
            status, location = expected
            scheme = "https" if bind.ssl and self.certificates else "http"
            route = FixedRoute(
                f"{scheme}://{address}",
                host=host,
                ca_file=self.certificates.ca_file if scheme == "https" and self.certificates else None,
            )
            answer = probes.get_answer(route, "/api/count")
            verdicts.append(
                answers_redirect(
                    bind.key, host, answer.status, answer.header("Location"), status, location, str(rule.origin)
                )
            )
        return verdicts

    @property
    def stats_socket(self) -> str:
        """The abstract-namespace name of the stats socket (``abns@`` in HAProxy's config)."""
        return self._socket_name

    def write_config(self, instances: Sequence[Instance]) -> Path:
        """Renders the config for ``instances`` on ``self.port`` and checks it with ``haproxy -c``."""
        if not self._listens:
            self._listens = plan_listens(self.config, self.route_socket)
            if any(bind.ssl for bind in self.config.binds()):
                self.certificates = self.certificates or RunCertificates(self.run_dir / "tls", self.address_names)
        settings = RenderSettings(
            run_dir=self.run_dir,
            listen=self.route_socket,
            weights=self.weights,
            stats_socket=self.stats_socket,
            listens=self._listens,
            certificates=self.certificates,
        )
        rendered = render_config(self.config, instances, settings)
        self.config_path.write_text(rendered.text)
        self.rewrites_path.write_text(rendered.rewrites_text())
        self.rewrites = rendered.rewrites
        check = subprocess.run(
            [self.binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            output = check.stdout.splitlines() + check.stderr.splitlines()
            # The first alerts say what is wrong; the last ones only that something was.
            alerts = [line.split(" : ", 1)[-1] for line in output if "ALERT" in line and "Error(s) found" not in line]
            alerts = [alert for alert in alerts if not alert.startswith("Fatal errors")]
            message = rendered.in_users_terms(" ".join(alerts or output), self.config_path)
            raise ConfigError(f"haproxy rejected {self.config.path}: {message}")
        return self.config_path

    def start(self, instances: Sequence[Instance]) -> None:
        self.port = self.requested_port or free_port(self.address)
        self._listens = {}
        if not port_is_free(self.address, self.port):
            raise AddressInUseError(f"{self.route_socket} is already in use: choose another --port or leave it out")
        self.write_config(instances)
        log = self.access_log.open("ab")
        try:
            # -W: master-worker, so a reload (SIGUSR2) starts a new worker and the old one
            # finishes its requests; -db: stay in the foreground, logs on stdout.
            self._process = self._spawn(
                [self.binary, "-W", "-db", "-f", str(self.config_path)], self.run_dir / "haproxy.stderr.log", stdout=log
            )
        finally:
            log.close()
        wait = WaitStrategy(
            f"haproxy on {self.route_socket}", timeout=self.start_timeout, log=self.run_dir / "haproxy.stderr.log"
        )
        wait.wait(self._accepting)

    def _accepting(self) -> bool | None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise StartupError(
                f"haproxy exited with code {self._process.returncode}: {tail(self.run_dir / 'haproxy.stderr.log', 3)}"
            )
        return accepts_connections(self.reach, self.port)

    def reload(self, instances: Sequence[Instance]) -> float:
        """Points HAProxy at ``instances``; returns the seconds it took. New servers alone join the
        running worker through the runtime API (its connection counts stay whole); any other change
        takes a seamless reload."""
        started = time.monotonic()
        before = self.config_path.read_text()
        self.write_config(instances)
        added = additions(before, self.config_path.read_text())
        if added:
            refused = add_servers(added, self._command)
            if refused is None:
                self.changed_in_place.append(time.time())
                return time.monotonic() - started
            self.runtime_refusals.append(refused)  # a reload below brings the worker to the config
        return self._replace_workers(self.run_dir / "haproxy.stderr.log")

    def server_states(self) -> dict[str, str]:
        """Each server's state as HAProxy's checks see it (UP, DOWN, ...), from the stats socket."""
        answer = self._command("show servers state")
        states: dict[str, str] = {}
        for line in answer.splitlines():
            fields = line.split()
            if len(fields) > 5 and not line.startswith("#") and fields[0].isdigit():
                states[fields[3]] = _OP_STATES.get(fields[5], fields[5])
        return states

    def _command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            # HAProxy binds abstract names padded with NULs to the full sun_path (108 bytes).
            sock.connect(("\0" + self.stats_socket).ljust(108, "\0"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()


def _redirect_target(words: list[str], host: str, path: str) -> tuple[int, str] | None:
    """(status, Location) a ``redirect scheme|location|prefix ...`` rule answers for ``host`` and ``path``."""
    if words[:1] == ["http-request"]:
        words = words[1:]
    if len(words) < 3 or words[0] != "redirect":
        return None
    kind, value = words[1], words[2]
    status = int(words[words.index("code") + 1]) if "code" in words[:-1] else 302
    if kind == "scheme":
        return status, f"{value}://{host}{path}"
    if kind == "prefix":
        return status, value.rstrip("/") + path
    if kind == "location" and "%[" not in value:
        return status, value
    return None
