"""The folder of a run's UNIX sockets: in the run directory when any user can reach it there."""

import shutil
import tempfile
from pathlib import Path

from harness.runtimes.sockets import MAX_SOCKET_PATH, SocketFolder


def test_a_private_or_long_run_directory_gets_a_short_open_folder_linked_from_it(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run = private / ("r" * 90) / "sockets"
    folder = SocketFolder(run, longest_name=12)
    try:
        assert run.is_symlink() and run.resolve() == folder.path.resolve()
        assert len(str(folder.path)) + 1 + 12 + len(".sock") <= MAX_SOCKET_PATH
        assert folder.path.stat().st_mode & 0o005 == 0o005  # any user may search and read it
    finally:
        folder.close()
    assert not folder.path.exists()


def test_a_short_open_run_directory_holds_the_sockets_itself() -> None:
    opened = Path(tempfile.mkdtemp(prefix="lbh-test-"))  # the system's temporary folder: open to every user
    try:
        opened.chmod(0o755)
        folder = SocketFolder(opened / "sockets", longest_name=8)
        assert folder.path == opened / "sockets" and folder.path.is_dir() and not folder.path.is_symlink()
        folder.close()
        assert folder.path.is_dir()  # the run's own folder stays with the run
    finally:
        shutil.rmtree(opened)
