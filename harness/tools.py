"""Finding the programs the harness runs: on PATH, else where Debian installs them.

A user's PATH often lacks ``/usr/sbin`` (a non-root login shell on Debian), where ``nft``,
``ip``, ``debootstrap`` and ``dockerd`` live; the harness finds them there all the same, as
``make setup`` does when it checks what is installed.
"""

from __future__ import annotations

import os
import shutil

# Debian's program folders, in the order a root PATH lists them.
SYSTEM_PROGRAM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def find_program(name: str) -> str | None:
    """The executable ``name`` on PATH, else in Debian's program folders; None when neither has it."""
    found = shutil.which(name)
    if found is not None:
        return found
    for folder in SYSTEM_PROGRAM_DIRS:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
