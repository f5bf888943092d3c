"""The reaper: a watchdog that outlives the harness just long enough to stop what it left.

Children already die with the harness (PR_SET_PDEATHSIG), but only the direct children:
nginx's and HAProxy's workers, forked by a master that dies with the harness, would stay
behind holding the listening socket. Every child the harness spawns leads a process group
of its own, so the reaper keeps the list of those groups, read from a pipe on its stdin:
each child writes ``watch PGID START`` itself before it execs (so before it can fork), and
the harness writes ``forget PGID`` when it has stopped it. When that pipe closes, because
the harness exited or was SIGKILLed, the reaper sends SIGKILL to every group still on the
list whose leader is the process that was registered (same start time) or is gone with
members left, removes the containers of every run registered with ``containers RUN
ENGINE`` (by their label), deletes the Kubernetes namespaces registered with
``k8s-namespace NAME CONTEXT``, then exits.

Run as ``python -m harness.reaper``; it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
from typing import IO

from harness.tools import find_program

_lock = threading.Lock()
_reaper: subprocess.Popen[bytes] | None = None


def stat_fields(path: str) -> list[str]:
    """The fields of a /proc ``stat`` file after the command name (state first), [] when gone."""
    try:
        with open(path) as stat:
            return stat.read().rsplit(")", 1)[1].split()  # the name itself may hold ")" and spaces
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "" when it is gone."""
    fields = stat_fields(f"/proc/{pid}/stat")
    return fields[19] if len(fields) > 19 else ""


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(f"/proc/{entry}/stat")
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _reap(groups: dict[int, str]) -> None:
    for pgid, started in groups.items():
        leader = start_time(pgid)
        # The leader still running is the one registered (a reused pid starts later), or it
        # is gone and its workers are left; any other group is not ours.
        if (leader == started or not leader) and _group_members(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def _remove_containers(runs: dict[str, str]) -> None:
    """Removes every container labelled with one of ``runs`` (label value -> engine URL)."""
    for run, url in runs.items():
        environment = {**os.environ, "DOCKER_HOST": url} if url else dict(os.environ)
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=org.lb-harness.run={run}"],
            capture_output=True, text=True, env=environment, check=False,
        )  # fmt: skip
        if listed.stdout.split():
            subprocess.run(["docker", "rm", "-f", *listed.stdout.split()], capture_output=True, env=environment)


def main(commands: IO[str]) -> int:
    groups: dict[int, str] = {}
    runs: dict[str, str] = {}
    namespaces: set[str] = set()
    k8s_namespaces: dict[str, str] = {}
    for line in commands:  # until the harness closes the pipe, whichever way it ends
        words = line.split()
        if len(words) == 3 and words[0] == "watch":
            groups[int(words[1])] = words[2]
        elif len(words) == 2 and words[0] == "forget":
            groups.pop(int(words[1]), None)
        elif len(words) in (2, 3) and words[0] == "containers":
            runs[words[1]] = words[2] if len(words) == 3 else ""
        elif len(words) == 2 and words[0] == "forget-containers":
            runs.pop(words[1], None)
        elif len(words) == 2 and words[0] == "netns":
            namespaces.add(words[1])
        elif len(words) == 2 and words[0] == "forget-netns":
            namespaces.discard(words[1])
        elif len(words) == 3 and words[0] == "k8s-namespace":
            k8s_namespaces[words[1]] = urllib.parse.unquote(words[2])
        elif len(words) == 2 and words[0] == "forget-k8s-namespace":
            k8s_namespaces.pop(words[1], None)
    _reap(groups)
    with contextlib.suppress(OSError):
        _remove_containers(runs)
    for name in namespaces:  # after the processes inside are gone
        with contextlib.suppress(OSError):
            subprocess.run([find_program("ip") or "ip", "netns", "delete", name], capture_output=True, check=False)
    for name, context in k8s_namespaces.items():  # the Kubernetes client is not standard library
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [sys.executable, "-m", "harness.k8s.cleanup", name, context], capture_output=True, timeout=60
            )
    return 0


def _running() -> subprocess.Popen[bytes]:
    """The reaper, started on first use or again if it died; call with ``_lock`` held."""
    global _reaper
    if _reaper is None or _reaper.poll() is not None:
        _reaper = subprocess.Popen(
            [sys.executable, "-m", "harness.reaper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not reach it
        )
    return _reaper


def _send(line: str) -> None:
    with _lock:
        stdin = _running().stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):
            stdin.write(line.encode())
            stdin.flush()


def channel() -> int:
    """The file descriptor of the pipe to the reaper, for a child to register itself.

    A child that writes ``watch`` itself, between fork and exec, is on the list before it can
    fork anything: registering from the harness after ``Popen`` returns leaves a window in
    which nginx has forked its workers and a SIGKILLed harness has not yet named their group.
    A single short ``os.write`` to a pipe is atomic, so it cannot interleave with the harness's.
    """
    with _lock:
        stdin = _running().stdin
        assert stdin is not None
        return stdin.fileno()


def watch_self(fd: int) -> None:
    """Registers the calling process's group (it must lead it) on the reaper's pipe ``fd``."""
    pid = os.getpid()
    with contextlib.suppress(BrokenPipeError):
        os.write(fd, f"watch {pid} {start_time(pid) or 0}\n".encode())


def forget_group(pgid: int) -> None:
    """The harness stopped this group itself."""
    _send(f"forget {pgid}\n")


def watch_containers(run: str, engine_url: str) -> None:
    """Registers a run's containers (by label) on an engine; removed if the harness dies first."""
    _send(f"containers {run} {engine_url}\n")


def forget_containers(run: str) -> None:
    _send(f"forget-containers {run}\n")


def watch_netns(name: str) -> None:
    """Registers a network namespace the harness made; deleted if the harness dies first."""
    _send(f"netns {name}\n")


def forget_netns(name: str) -> None:
    _send(f"forget-netns {name}\n")


def watch_k8s_namespace(name: str, context: str) -> None:
    """Registers a Kubernetes namespace a run created; deleted if the harness dies first."""
    _send(f"k8s-namespace {name} {urllib.parse.quote(context, safe='')}\n")  # a context name may hold spaces


def forget_k8s_namespace(name: str) -> None:
    _send(f"forget-k8s-namespace {name}\n")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main(sys.stdin))
