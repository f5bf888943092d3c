"""Starting and stopping child processes so that none outlives the harness.

Children run in their own session, so a Ctrl-C in the terminal reaches only the harness,
which then stops them in order; the kernel sends them SIGKILL if the harness dies
without stopping them (PR_SET_PDEATHSIG), and the reaper (``harness.reaper``) then kills
what they had forked themselves, such as nginx's workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from harness import reaper

_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int, reaper_channel: int) -> None:
    """Runs in the child between fork and exec: dies with the harness, on the reaper's list."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the harness died before the line above: nothing would kill us
        os._exit(1)
    reaper.watch_self(reaper_channel)


def spawn(
    argv: Sequence[str],
    log_path: Path,
    stdin: int | IO[Any] = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Starts ``argv`` in its own session with stderr (and stdout unless given) to ``log_path``;
    ``env`` is added to this process's environment."""
    log = log_path.open("ab")
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=log if stdout is None else stdout,
            stderr=log,
            env={**os.environ, **env} if env else None,
            start_new_session=True,  # its own session: the group's id is its pid
            preexec_fn=functools.partial(_child_setup, os.getpid(), reaper.channel()),
        )
    finally:
        log.close()
    return process


def _state(stat_path: str) -> str:
    """The one-letter state in a /proc stat file, "" when it is gone."""
    fields = reaper.stat_fields(stat_path)
    return fields[0] if fields else ""


def alive(pid: int) -> bool:
    """True until every thread of the process has exited, and so released its files.

    A killed multi-threaded process shows its main thread as a zombie while its other
    threads are still exiting, and its sockets stay open until the last one has: an
    instance killed that way still accepts connections for a few milliseconds, then resets
    them. Only when no thread is left running are its listening sockets closed.
    """
    state = _state(f"/proc/{pid}/stat")
    if state not in ("Z", "X"):
        return state != ""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(_state(f"/proc/{pid}/task/{tid}/stat") not in ("", "Z", "X") for tid in threads)


def parent_of(pid: int) -> int | None:
    """The parent pid of a live process, None when it is gone or a zombie."""
    fields = reaper.stat_fields(f"/proc/{pid}/stat")
    return None if not fields or fields[0] == "Z" else int(fields[1])


def children_of(pid: int) -> list[int]:
    """The pids of a process's live children."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:  # kernels without CONFIG_PROC_CHILDREN: scan /proc
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and parent_of(int(entry)) == pid:
                found.append(int(entry))
        return found


def terminate(process: subprocess.Popen[bytes], grace: float = 3.0, signum: int = signal.SIGTERM) -> None:
    """Stops a child: ``signum``, then SIGKILL after ``grace`` seconds; safe when it already exited."""
    if process.poll() is None:
        try:
            os.kill(process.pid, signum)
            # A stopped process cannot act on SIGTERM until it runs again.
            os.kill(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            # The whole process group: nginx's workers and the launcher's instances with it.
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(process.pid) == process.pid:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
            process.wait()
    reaper.forget_group(process.pid)


def wait_gone(pids: Sequence[int], timeout: float = 5.0) -> list[int]:
    """Waits until none of ``pids`` is alive; returns those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    remaining = [pid for pid in pids if alive(pid)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = [pid for pid in remaining if alive(pid)]
    return remaining
