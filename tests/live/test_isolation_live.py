"""Runs that share a machine: two at once do not collide, and every listener is on loopback."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.net import LOOPBACK, accepts_connections, free_port
from harness.readiness import WaitStrategy

pytestmark = pytest.mark.lb

HARNESS = [sys.executable, "-m", "harness.cli.main"]


def test_two_runs_at_once_both_pass(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen(
            [*HARNESS, "bench", "--algo", algorithm, "--duration", "3", "--results-dir", str(tmp_path / algorithm)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for algorithm in ("round_robin", "ip_hash")
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stdout + stderr
    # Separate run directories, balancers on separate ports.
    urls = [
        json.loads(line)["url"]
        for journal in tmp_path.glob("*/*/*/journal.jsonl")
        for line in journal.read_text().splitlines()
        if '"balancer"' in line
    ]
    assert len(urls) == 2 and len(set(urls)) == 2, urls


def listening_sockets(pids: set[int]) -> list[str]:
    """``address:port`` of every listening TCP socket held by ``pids`` (IPv4 and IPv6)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except (FileNotFoundError, PermissionError):
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    address, port = fields[1].split(":")
                    found.append(f"{address}:{int(port, 16)}" if width == 32 else f"{_ipv4(address)}:{int(port, 16)}")
    return found


def _ipv4(hex_address: str) -> str:
    return ".".join(str(int(hex_address[i : i + 2], 16)) for i in range(6, -1, -2))


def descendants(root: int) -> set[int]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in found:
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError):
                continue
            if parent in found:
                found.add(int(entry))
                changed = True
    return found


def test_every_listener_of_the_harness_is_on_loopback(tmp_path: Path) -> None:
    # harness ui has them all: the web UI, a Locust master, the balancer and its workers,
    # the instances and their control ports.
    port = free_port()
    process = subprocess.Popen(
        [*HARNESS, "ui", "--algo", "round_robin", "--web-port", str(port), "--load-workers", "1",
         "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        WaitStrategy("the web UI", timeout=30).wait(lambda: accepts_connections(LOOPBACK, port))
        sockets = listening_sockets(descendants(process.pid))
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    # The web UI, the master, nginx, and 3 instances with their control ports at least.
    assert len(sockets) >= 8, sockets
    assert all(socket.startswith("127.") for socket in sockets), sockets
