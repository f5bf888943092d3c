"""Where instances put the UNIX sockets the user's config names: ``sockets/`` in the run directory.

nginx's workers connect to them as another user than the harness (``nobody`` when the master
is root), which needs search permission on every folder above the socket, and a socket's path
holds at most 107 bytes. A run directory under pytest's private temporary folders meets
neither; the sockets then live in a short, world-searchable folder of the system's temporary
directory, ``sockets`` in the run directory links to it, and it is removed when the run ends.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

# sun_path is 108 bytes with its terminating NUL.
MAX_SOCKET_PATH = 107


class SocketFolder:
    """The folder of the run's sockets, by a path any user may connect through."""

    def __init__(self, directory: Path, longest_name: int) -> None:
        self.directory = directory
        self._own: Path | None = None
        self.path = directory
        if _reachable(directory.parent) and len(str(directory)) + 1 + longest_name + len(".sock") <= MAX_SOCKET_PATH:
            directory.mkdir(parents=True, exist_ok=True)
            return
        self._own = Path(tempfile.mkdtemp(prefix="lbh-"))
        self._own.chmod(0o755)
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.symlink_to(self._own, target_is_directory=True)
        self.path = self._own

    def close(self) -> None:
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)
            self._own = None


def _reachable(folder: Path) -> bool:
    """Whether every folder from the root down to ``folder`` lets any user pass through."""
    for part in [folder.resolve(), *folder.resolve().parents]:
        if not part.exists():
            continue
        if not os.stat(part).st_mode & stat.S_IXOTH:
            return False
    return True
