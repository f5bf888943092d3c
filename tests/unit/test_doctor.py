"""``harness doctor`` on a fake machine: what it reports, the install line, the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from rich.console import Console

from harness.cli import doctor_command
from harness.cli.main import main
from harness.doctor import (
    DOCKER_ENGINE,
    NAMESPACES,
    CheckResult,
    exit_code,
    install_command,
    parse_version,
    run_checks,
)
from harness.errors import ToolMissingError

# What Debian bookworm's packages print for their version flags, and where they live.
MACHINE = {
    "nginx": ("/usr/sbin/nginx", "nginx version: nginx/1.22.1\n"),
    "haproxy": ("/usr/sbin/haproxy", "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n"),
    "caddy": ("/usr/bin/caddy", "2.6.2\n"),
    "wrk": ("/usr/bin/wrk", "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\n"),
    "nft": ("/usr/sbin/nft", "nftables v1.0.6 (Lester Gooch #5)\n"),
    "ip": ("/usr/sbin/ip", "ip utility, iproute2-6.1.0, libbpf 1.1.2\n"),
    "dockerd": ("/usr/sbin/dockerd", "Docker version 20.10.24+dfsg1, build 5d6db84\n"),
    "debootstrap": ("/usr/sbin/debootstrap", "debootstrap 1.0.128+nmu2+deb12u2\n"),
    "chromium": (
        "/usr/bin/chromium",
        # The wrapper script's own complaint comes on stderr, after the version on stdout.
        "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)\n"
        "/usr/bin/chromium: 9: [: unexpected operator\n",
    ),
    "chromedriver": (
        "/usr/bin/chromedriver",
        "ChromeDriver 156.0.8078.114 (ea19f97-refs/branch-heads/8078_108@{#5})\n",
    ),
}


@dataclass
class FakeProbe:
    """A machine with the tools in ``tools`` (path, version output); everything else is missing."""

    tools: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(MACHINE))
    root: bool = True
    capable: bool = True
    namespace_error: str | None = None
    engine: tuple[str, str] | None = ("unix:///run/lb-harness-docker/docker.sock", "20.10.24+dfsg1")
    missing_messages: dict[str, str] = field(default_factory=dict)
    namespaces_created: int = 0

    def locate(self, tool: str) -> str:
        if tool not in self.tools:
            raise ToolMissingError(self.missing_messages.get(tool, f"{tool} is not installed: apt-get install it"))
        return self.tools[tool][0]

    def output(self, command: Sequence[str]) -> str:
        outputs = {path: text for path, text in self.tools.values()}
        return outputs[command[0]]

    def privileged(self) -> bool:
        return self.capable

    def is_root(self) -> bool:
        return self.root

    def create_namespace(self) -> str:
        self.namespaces_created += 1
        if self.namespace_error is not None:
            raise OSError(self.namespace_error)
        return "lbh-0123abcd"

    def docker_engine(self) -> tuple[str, str]:
        if self.engine is None:
            raise ToolMissingError("no DOCKER_HOST, no socket: `make docker-engine` starts one")
        return self.engine


def without(*tools: str, probe: FakeProbe | None = None) -> FakeProbe:
    """``probe`` (a FakeProbe of the whole machine by default) with ``tools`` uninstalled."""
    probe = probe or FakeProbe()
    for tool in tools:
        del probe.tools[tool]
    return probe


def by_part(results: Sequence[CheckResult]) -> dict[str, CheckResult]:
    return {result.part: result for result in results}


def test_everything_present_is_found_with_versions_and_paths_and_exits_0() -> None:
    results = by_part(run_checks(FakeProbe()))
    expected = {
        "nginx": ("1.22.1", "/usr/sbin/nginx"),
        "HAProxy": ("2.6.12", "/usr/sbin/haproxy"),
        "Caddy": ("2.6.2", "/usr/bin/caddy"),
        "wrk": ("4.1.0", "/usr/bin/wrk"),
        "nft": ("1.0.6", "/usr/sbin/nft"),
        "ip": ("6.1.0", "/usr/sbin/ip"),
        "dockerd": ("20.10.24", "/usr/sbin/dockerd"),
        "debootstrap": ("1.0.128", "/usr/sbin/debootstrap"),
        "chromium": ("156.0.8078.114", "/usr/bin/chromium"),
        "chromedriver": ("156.0.8078.114", "/usr/bin/chromedriver"),
        DOCKER_ENGINE: ("20.10.24+dfsg1", None),  # its URL is in the notes, not a path
    }
    observed = {part: (result.version, result.path) for part, result in results.items() if part in expected}
    print(f"observed {observed}\nexpected {expected}")
    assert observed == expected
    engine_note = results[DOCKER_ENGINE].detail
    assert engine_note == "answers at unix:///run/lb-harness-docker/docker.sock", engine_note
    assert all(result.found for result in results.values()), [r.part for r in results.values() if not r.found]
    assert results[NAMESPACES].detail == "created and deleted lbh-0123abcd", results[NAMESPACES].detail
    assert install_command(list(results.values()), as_root=True) is None
    assert exit_code(list(results.values())) == 0


def test_missing_nginx_gives_its_package_and_exit_code_1() -> None:
    results = run_checks(without("nginx"))
    command = install_command(results, as_root=True)
    print(f"observed install line {command!r}, exit code {exit_code(results)}; expected "
          "'apt-get install -y nginx-light', 1")  # fmt: skip
    assert command == "apt-get install -y nginx-light"
    assert exit_code(results) == 1
    nginx = by_part(results)["nginx"]
    assert (nginx.found, nginx.required, nginx.detail) == (False, True, "nginx is not installed"), nginx


def test_not_root_puts_sudo_in_front_and_lists_every_missing_package_once_in_table_order() -> None:
    results = run_checks(without("haproxy", "wrk", "chromium", "chromedriver", probe=FakeProbe(root=False)))
    command = install_command(results, as_root=False)
    expected = "sudo apt-get install -y haproxy wrk chromium chromium-driver"
    print(f"observed {command!r}\nexpected {expected!r}")
    assert command == expected


def test_only_optional_parts_missing_still_exits_0() -> None:
    results = run_checks(without("haproxy", "wrk", "nft", "ip", "dockerd", "chromium", probe=FakeProbe(engine=None)))
    missing = sorted(result.part for result in results if not result.found)
    print(f"missing: {missing}; exit code {exit_code(results)} (expected 0: nginx is found)")
    assert exit_code(results) == 0
    assert "nginx" not in missing and DOCKER_ENGINE in missing and NAMESPACES in missing


def test_a_bad_harness_nginx_is_named_without_the_harness_install_hint() -> None:
    # nginx_binary()'s own message ends in how to install; the doctor says that once, in its line.
    message = "HARNESS_NGINX=/nonexistent/nginx is not an executable nginx: install it with `apt-get install -y nginx`"
    probe = without("nginx", probe=FakeProbe(missing_messages={"nginx": message}))
    nginx = by_part(run_checks(probe))["nginx"]
    expected = "HARNESS_NGINX=/nonexistent/nginx is not an executable nginx"
    print(f"observed {nginx.detail!r}\nexpected {expected!r}")
    assert nginx.detail == expected and not nginx.found


def test_namespaces_are_not_tried_without_privilege() -> None:
    probe = FakeProbe(root=False, capable=False)
    namespaces = by_part(run_checks(probe))[NAMESPACES]
    print(f"observed found={namespaces.found} detail={namespaces.detail!r}, tried {probe.namespaces_created} times")
    assert not namespaces.found and "root" in namespaces.detail
    assert probe.namespaces_created == 0, "without CAP_SYS_ADMIN `ip netns add` cannot work; it must not be tried"


def test_namespaces_are_not_tried_without_ip() -> None:
    probe = without("ip")
    results = by_part(run_checks(probe))
    print(f"observed {results[NAMESPACES].detail!r}; install line {install_command(list(results.values()), True)!r}")
    assert not results[NAMESPACES].found and probe.namespaces_created == 0
    assert install_command(list(results.values()), as_root=True) == "apt-get install -y iproute2"


def test_a_namespace_that_cannot_be_created_is_reported_with_the_error() -> None:
    probe = FakeProbe(namespace_error="ip netns add lbh-0123abcd: mount --make-shared /run/netns failed")
    namespaces = by_part(run_checks(probe))[NAMESPACES]
    print(f"observed {namespaces.detail!r}")
    assert not namespaces.found and "mount --make-shared" in namespaces.detail and probe.namespaces_created == 1


def test_an_engine_that_does_not_answer_adds_no_package() -> None:
    # dockerd is installed; starting it is `make docker-engine`, not apt-get.
    results = run_checks(FakeProbe(engine=None))
    engine = by_part(results)[DOCKER_ENGINE]
    print(f"observed engine found={engine.found} detail={engine.detail!r}; line {install_command(results, True)!r}")
    assert not engine.found and "make docker-engine" in engine.detail
    assert install_command(results, as_root=True) is None and exit_code(results) == 0


@pytest.mark.parametrize(
    ("output", "expected"),
    [(text, version) for (_, text), version in zip(
        MACHINE.values(),
        ["1.22.1", "2.6.12", "2.6.2", "4.1.0", "1.0.6", "6.1.0", "20.10.24", "1.0.128", "156.0.8078.114",
         "156.0.8078.114"],
        strict=True,
    )] + [("usage: nothing here\n", None)],
)  # fmt: skip
def test_versions_are_read_from_what_the_tools_print(output: str, expected: str | None) -> None:
    observed = parse_version(output)
    print(f"observed {observed!r}, expected {expected!r} from {output!r}")
    assert observed == expected


def test_the_printed_report_has_the_table_the_install_line_and_the_verdict() -> None:
    console = Console(record=True, width=80)
    code = doctor_command.doctor(console, without("nginx", "wrk", probe=FakeProbe(root=False)))
    text = console.export_text()
    print(text)
    assert code == 1, f"exit code {code}, expected 1 with nginx missing"
    assert "install the missing packages: sudo apt-get install -y nginx-light wrk" in text
    assert "harness bench cannot run: nginx missing" in text
    assert "/usr/sbin/haproxy" in text and "2.6.12" in text
    assert "network namespaces: created and deleted lbh-0123abcd" in text
    assert max(len(line) for line in text.splitlines()) <= 80, "the table must fit an 80-column terminal"


def test_harness_doctor_is_a_subcommand_with_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_command, "SystemProbe", lambda: without("nginx"))
    code = main(["doctor"])
    print(f"observed exit code {code}, expected 1")
    assert code == 1
    monkeypatch.setattr(doctor_command, "SystemProbe", FakeProbe)
    assert main(["doctor"]) == 0
