"""Starts backend instances by forking a process that has already imported the server.

Importing aiohttp costs about 0.3 s of CPU; with 50 instances on two cores that alone
would take seconds. The launcher pays it once and forks one process per instance.

Protocol: one JSON object per line on stdin, ``{"name", "host", "port", "control_port",
"socket", "tls", "grpc", "http2", "log"}``; each child announces itself on the shared stdout (see ``serve``). When stdin
closes the launcher stops its children and exits. Children get SIGKILL from the kernel
if the launcher dies, and the launcher if the harness dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import signal
import sys

from harness.backends import serve

with contextlib.suppress(ImportError):
    import uvloop  # noqa: F401  (imported once here, so forked instances start without paying for it)

_PR_SET_PDEATHSIG = 1


def _run_child(command: dict[str, object], launcher_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != launcher_pid:  # the launcher died between fork and prctl
        os._exit(1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log_fd = os.open(str(command["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    serve.main(
        [
            "--name",
            str(command["name"]),
            "--host",
            str(command["host"]),
            "--port",
            str(command.get("port", 0)),
            "--control-host",
            str(command["host"]),
            "--control-port",
            str(command.get("control_port", 0)),
            *(["--socket", str(command["socket"])] if command.get("socket") else []),
            *_tls_args(command.get("tls")),
            *(["--grpc", "--grpc-port", str(command.get("grpc_port", 0))] if command.get("grpc") else []),
            *(["--http2", "--http2-port", str(command.get("http2_port", 0))] if command.get("http2") else []),
        ]
    )


def _tls_args(tls: object) -> list[str]:
    """``--tls-cert C --tls-key K`` for a command's ``"tls": [C, K]``; nothing without one."""
    if not isinstance(tls, list) or len(tls) != 2:
        return []
    return ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]


def main() -> None:
    # Everything imported so far moves to a generation the collector never scans: the children's
    # collections then leave those pages alone and they stay shared (gc.freeze's own use).
    gc.freeze()
    launcher_pid = os.getpid()
    children: set[int] = set()
    # Children are reaped by the kernel; the harness tracks them by pid and /proc.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for line in sys.stdin:
            command = json.loads(line)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    _run_child(command, launcher_pid)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:
                    code = 1
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(code)
            children.add(pid)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)


if __name__ == "__main__":
    main()
