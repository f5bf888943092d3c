"""Programs are found on PATH, else in Debian's program folders (a non-root PATH lacks /usr/sbin)."""

import os

import pytest

from harness.tools import SYSTEM_PROGRAM_DIRS, find_program


def test_a_program_off_path_is_found_in_the_system_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_program("sh")
    assert found is not None and os.path.dirname(found) in SYSTEM_PROGRAM_DIRS, found
    assert find_program("no-such-program-lbh") is None
