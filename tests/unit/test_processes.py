"""A process counts as alive until it has released its sockets, not when its main thread exits."""

import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from harness.processes import alive, wait_gone

# The main thread exits (a zombie to /proc) while another thread keeps the listening socket
# open: the state a SIGKILLed multi-threaded instance is in for the milliseconds its other
# threads take to exit.
ZOMBIE_LEADER_WITH_A_LISTENER = textwrap.dedent(
    """
    import ctypes, socket, sys, threading, time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=time.sleep, args=(60,)).start()
    ctypes.CDLL(None).pthread_exit(None)
    """
)


def main_thread_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_zombie_main_thread_with_a_thread_left_is_alive_until_the_socket_closes() -> None:
    process = subprocess.Popen([sys.executable, "-c", ZOMBIE_LEADER_WITH_A_LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        deadline = time.monotonic() + 10
        while main_thread_state(process.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        if main_thread_state(process.pid) != "Z":
            pytest.fail(f"the main thread did not exit: state {main_thread_state(process.pid)!r}")
        assert not refused(port), "the listener closed with the main thread; expected it open"
        assert alive(process.pid), "a process still holding a listening socket was called gone"
        process.send_signal(signal.SIGKILL)
        assert wait_gone([process.pid]) == [], f"pid {process.pid} still alive 5 s after SIGKILL"
        assert refused(port), f"port {port} still accepts after the process was called gone"
    finally:
        process.kill()
        process.wait()
