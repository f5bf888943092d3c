"""``harness doctor``: what the harness needs on this machine, found or missing.

Each part is looked up the way the harness itself looks it up when a run needs it (the
same functions: ``nginx_binary()`` honours ``$HARNESS_NGINX``, ``haproxy_binary()``
``$HARNESS_HAPROXY``, ``engine_url()`` ``$DOCKER_HOST``), so a part the doctor finds is the
one a run will use, and a part it calls missing is one a run would stop on.

All probing goes through a :class:`Probe`; :class:`SystemProbe` asks the machine, and a
unit test passes a fake one. :func:`run_checks` returns one :class:`CheckResult` per part;
:func:`install_command` turns the missing ones into one ``apt-get install`` line and
:func:`exit_code` is 0 when the default ``harness bench`` (nginx) can run, 1 otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import ToolMissingError
from harness.tools import find_program

# Where the browser tests take them from (tests/live/test_web_ui_live.py): Debian's paths only,
# since a snap or Google build on PATH pairs with a different driver.
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
_CAP_SYS_ADMIN = 21  # bit in /proc/self/status's CapEff: what `ip netns add` (a mount) and setns(2) need
# The upstream version only: a Debian revision (2.6.12-1+deb12u4) says nothing the harness
# depends on, and it would widen the table past an 80-column terminal.
_VERSION = re.compile(r"\d+(?:\.\d+)+")


@dataclass(frozen=True)
class Part:
    """One thing the harness needs, and what it is needed for."""

    name: str
    tool: str  # the key :meth:`Probe.locate` knows it by
    package: str | None  # the Debian package that provides it
    needed_for: str
    version_flag: str = "--version"
    required: bool = False  # needed by the default `harness bench`, so it decides the exit code


@dataclass(frozen=True)
class CheckResult:
    part: str
    found: bool
    version: str | None
    path: str | None
    detail: str  # why it is missing, or what was checked for a part that is not a file
    package: str | None  # installed by the install line when missing
    needed_for: str
    required: bool


TOOLS: tuple[Part, ...] = (
    Part("nginx", "nginx", "nginx-light", "harness bench (default)", "-v", required=True),
    Part("HAProxy", "haproxy", "haproxy", "--balancer haproxy", "-v"),
    Part("Caddy", "caddy", "caddy", "--balancer caddy", "version"),
    Part("wrk", "wrk", "wrk", "benchmarks, --driver wrk", "-v"),
    Part("nft", "nft", "nftables", "--balancer kube-proxy"),
    Part("ip", "ip", "iproute2", "--balancer kube-proxy", "-V"),
    Part("dockerd", "dockerd", "docker.io", "--runtime docker"),
    Part("debootstrap", "debootstrap", "debootstrap", "--runtime docker (offline base)"),
    Part("chromium", "chromium", "chromium", "web UI browser tests"),
    Part("chromedriver", "chromedriver", "chromium-driver", "web UI browser tests"),
)
NAMESPACES = "network namespaces"
DOCKER_ENGINE = "Docker engine"


class Probe(Protocol):
    """What the doctor asks the machine; a unit test passes a fake."""

    def locate(self, tool: str) -> str:
        """The executable the harness would run for ``tool``; ToolMissingError when there is none."""

    def output(self, command: Sequence[str]) -> str:
        """The command's standard output, then its standard error; OSError when it cannot run."""

    def privileged(self) -> bool:
        """Whether this process may create a network namespace (root, or CAP_SYS_ADMIN)."""

    def is_root(self) -> bool: ...

    def create_namespace(self) -> str:
        """Creates, enters, leaves and deletes a namespace as a run does; its name, or OSError."""

    def docker_engine(self) -> tuple[str, str]:
        """The engine's URL and version; ToolMissingError when none answers."""


def _which(name: str, *fallbacks: str) -> Callable[[], str]:
    """A locator for a tool found on PATH or in Debian's program folders, else at the absolute ``fallbacks``."""

    def locate() -> str:
        found = find_program(name) or next(
            (path for path in fallbacks if os.path.isfile(path) and os.access(path, os.X_OK)), None
        )
        if found is None:
            raise ToolMissingError(f"{name} is not installed")
        return found

    return locate


def _fixed(path: str) -> Callable[[], str]:
    def locate() -> str:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ToolMissingError(f"{path} is not installed")
        return path

    return locate


class SystemProbe:
    """Asks this machine, through the harness's own lookups."""

    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout  # a version flag answers at once; a hung binary must not hang the doctor

    def locate(self, tool: str) -> str:
        # Imported here: the kube-proxy balancer pulls in gevent, which the doctor's callers
        # need not have loaded just to build a Probe.
        from harness.balancers.caddy.config import caddy_binary
        from harness.balancers.haproxy.balancer import haproxy_binary
        from harness.balancers.nginx.balancer import nginx_binary
        from harness.load.wrk import wrk_binary
        from harness.netns import nft_binary

        locators: dict[str, Callable[[], str]] = {
            "nginx": nginx_binary,
            "haproxy": haproxy_binary,
            "caddy": caddy_binary,
            "wrk": wrk_binary,
            "nft": nft_binary,
            "ip": _which("ip"),  # as harness.netns finds it
            "dockerd": _which("dockerd", "/usr/sbin/dockerd"),  # what `make docker-engine` starts
            "debootstrap": _which("debootstrap"),
            "chromium": _fixed(CHROMIUM),
            "chromedriver": _fixed(CHROMEDRIVER),
        }
        return locators[tool]()

    def output(self, command: Sequence[str]) -> str:
        try:
            done = subprocess.run(list(command), capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise OSError(f"{' '.join(command)} did not answer in {self.timeout:g} s") from None
        return done.stdout + done.stderr

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def privileged(self) -> bool:
        if self.is_root():
            return True
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return False
        effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
        return bool(int(effective, 16) >> _CAP_SYS_ADMIN & 1)

    def create_namespace(self) -> str:
        # The harness's own class: the same name prefix, the same steps (add, loopback up,
        # setns, route_localnet), so a read-only /proc/sys fails here as it would in a run.
        # It registers the namespace with the reaper first, so even a doctor killed half-way
        # leaves none behind.
        from harness.netns import NetworkNamespace

        with NetworkNamespace() as namespace:
            return namespace.name

    def docker_engine(self) -> tuple[str, str]:
        import docker  # the SDK is needed by this check only

        from harness.runtimes.docker_engine import ENGINE_SOCKET, SYSTEM_SOCKET, engine_url

        start = "`make docker-engine` starts one"
        url = engine_url()
        if url is None:
            raise ToolMissingError(f"no DOCKER_HOST, no socket at {ENGINE_SOCKET} or {SYSTEM_SOCKET}: {start}")
        try:
            # A short timeout of its own: engine() waits 120 s, right for a build, not for a check.
            client = docker.DockerClient(base_url=url, timeout=5)
            version = str(client.version().get("Version", "?"))
            client.close()
        except Exception as exc:  # the SDK raises several unrelated types for an absent engine
            raise ToolMissingError(f"none answers at {url} ({type(exc).__name__}): {start}") from None
        return url, version


def parse_version(output: str) -> str | None:
    """The first version number in a tool's version output (``HAProxy version 2.6.12-1+deb12u4`` -> ``2.6.12``)."""
    match = _VERSION.search(output)
    return match.group(0) if match else None


def _reason(error: ToolMissingError) -> str:
    # The harness's messages end with how to install the tool; the doctor says that once,
    # in its install line, so only the part before the hint is kept.
    return str(error).partition(": ")[0]


def _check_tool(part: Part, probe: Probe) -> CheckResult:
    try:
        path = probe.locate(part.tool)
    except ToolMissingError as exc:
        return CheckResult(part.name, False, None, None, _reason(exc), part.package, part.needed_for, part.required)
    try:
        version = parse_version(probe.output([path, part.version_flag]))
        detail = "" if version else f"{part.version_flag} printed no version"
    except OSError as exc:
        version, detail = None, f"{part.version_flag} failed: {exc}"
    return CheckResult(part.name, True, version, path, detail, part.package, part.needed_for, part.required)


def _check_namespaces(probe: Probe, ip_found: bool) -> CheckResult:
    def result(found: bool, detail: str) -> CheckResult:
        return CheckResult(NAMESPACES, found, None, None, detail, None, "--balancer kube-proxy", False)

    if not ip_found:
        return result(False, "needs iproute2's ip")
    if not probe.privileged():
        # Not even tried: without CAP_SYS_ADMIN `ip netns add` cannot mount the namespace.
        return result(False, "needs root (or CAP_SYS_ADMIN): run as root")
    try:
        name = probe.create_namespace()
    except OSError as exc:
        return result(False, f"creating one failed: {exc}")
    return result(True, f"created and deleted {name}")


def _check_engine(probe: Probe) -> CheckResult:
    try:
        url, version = probe.docker_engine()
    except ToolMissingError as exc:
        return CheckResult(DOCKER_ENGINE, False, None, None, str(exc), None, "--runtime docker", False)
    # The URL goes in the notes: as a path it would squeeze the table's other columns.
    return CheckResult(DOCKER_ENGINE, True, version, None, f"answers at {url}", None, "--runtime docker", False)


def run_checks(probe: Probe | None = None) -> list[CheckResult]:
    """One result per part, in the order the table shows them."""
    probe = probe or SystemProbe()
    results = [_check_tool(part, probe) for part in TOOLS]
    ip_found = next(result.found for result in results if result.part == "ip")
    namespaces = _check_namespaces(probe, ip_found)
    engine = _check_engine(probe)
    # Each next to the binary it depends on, so the table reads part by part.
    at_ip = next(index for index, result in enumerate(results) if result.part == "ip") + 1
    results.insert(at_ip, namespaces)
    at_dockerd = next(index for index, result in enumerate(results) if result.part == "dockerd") + 1
    results.insert(at_dockerd, engine)
    return results


def install_command(results: Sequence[CheckResult], as_root: bool) -> str | None:
    """One apt-get line for every missing part that a package provides; None when nothing is."""
    packages = list(dict.fromkeys(result.package for result in results if not result.found and result.package))
    if not packages:
        return None
    sudo = "" if as_root else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when every part the default `harness bench` needs is found, else 1."""
    return 0 if all(result.found for result in results if result.required) else 1
