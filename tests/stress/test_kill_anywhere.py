"""SIGKILL the harness at random moments of a run; nothing of the run may be left behind.

Each round starts ``harness bench`` with a short kill-and-rollback scenario (bring-up,
load, a fault, its rollback, teardown all fit in about six seconds), SIGKILLs it after a
random delay over that whole span, and then looks for any process that still has a file
or its working directory in the round's results directory (nginx and its workers, the
instances' launcher and instances: each keeps the run's log open), naming the sockets they
still listen on. Other runs may share the machine, so only this round's processes count.
The suite runs a few rounds; ``HARNESS_STRESS_KILLS=20`` runs the twenty of the README's
figure.
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.lb

ROUNDS = int(os.environ.get("HARNESS_STRESS_KILLS", "4"))
SCENARIO = 'duration = 3\nwarmup = 1\n[[faults]]\nat = 1\nkind = "kill"\ninstance = 2\nrollback_after = 1\n'
SPAN_S = 6.0  # from the start of the command to the end of its teardown: 5.97 s measured on this machine


def processes_using(directory: Path) -> list[str]:
    """Live processes with an open file, their working directory or their command line in ``directory``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            paths = [os.readlink(f"/proc/{entry}/cwd"), command]
            paths += [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if any(str(directory) in path for path in paths):
            found.append(f"{entry}: {command.strip()}")
    return found


def listening_sockets_of(pids: list[int]) -> list[str]:
    """``address:port`` of the listening TCP sockets ``pids`` hold (other runs may share the machine)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (FileNotFoundError, PermissionError):
            continue
    found = []
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].split(":")
                octets = [int(address[i : i + 2], 16) for i in range(6, -1, -2)]
                found.append(f"{'.'.join(map(str, octets))}:{int(port, 16)}")
    return found


def settle(check: Callable[[], list[str]], timeout: float = 8.0) -> list[str]:
    """What ``check`` still finds once the kernel and the reaper have had ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    found = check()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = check()
    return found


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_a_killed_harness_leaves_nothing_behind(tmp_path: Path, round_number: int) -> None:
    scenario = tmp_path / "kill.toml"
    scenario.write_text(SCENARIO)
    results = tmp_path / "results"
    # Spread the kills over the whole life of a run: round k of n falls in the k-th slice.
    delay = (round_number + random.random()) * SPAN_S / ROUNDS
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli.main", "bench", "--algo", "health_checks", "--scenario", str(scenario),
         "--results-dir", str(results)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(delay)  # the moment of the kill is the point of the test, not a readiness wait
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    left = settle(lambda: processes_using(results))
    sockets = listening_sockets_of([int(entry.split(":")[0]) for entry in left])
    assert left == [], f"killed after {delay:.2f} s; left running: {left}; listening: {sockets}"
