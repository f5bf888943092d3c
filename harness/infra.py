"""Where configs, scenarios, manifests and Docker files come from: the user's folder, then the shipped one.

The package ships an ``infra`` folder (``harness/shipped/infra``). A user's own folder
overrides it file by file, so a project can keep only the configs it changes:

    1. ``$HARNESS_INFRA_DIR`` (what ``--infra-dir`` sets, so Locust workers and other
       processes the harness starts see the same folder);
    2. ``./infra`` in the current directory, when it is a folder;
    3. the shipped folder.

A file the user's folder lacks comes from the shipped one.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from harness.errors import SpecError

ENVIRONMENT_VARIABLE = "HARNESS_INFRA_DIR"


def shipped_dir() -> Path:
    """The package's own ``infra`` folder (in site-packages when installed from a wheel)."""
    return Path(str(files("harness.shipped"))) / "infra"


def shipped_locustfile() -> Path:
    """The locustfile that runs the harness's user class: ``locust -f`` takes this path."""
    return Path(str(files("harness.shipped"))) / "locustfiles" / "balancer.py"


def user_dir() -> Path | None:
    """The user's own folder, or None when only the shipped one applies.

    Raises SpecError when ``$HARNESS_INFRA_DIR`` names something that is not a folder.
    """
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise SpecError(f"infra folder {chosen} (from --infra-dir or ${ENVIRONMENT_VARIABLE}) is not a directory")
        return None if _is_shipped(path) else path.resolve()
    here = Path.cwd() / "infra"
    # In the checkout, ./infra is a link to the shipped folder: that is not a user's own.
    if here.is_dir() and not _is_shipped(here):
        return here.resolve()
    return None


def use_infra_dir(path: Path) -> None:
    """Make ``path`` the user's folder for this process and every process it starts.

    Raises SpecError when ``path`` is not a folder.
    """
    if not path.is_dir():
        raise SpecError(f"--infra-dir {path} is not a directory")
    os.environ[ENVIRONMENT_VARIABLE] = str(path.resolve())


def infra_path(*parts: str) -> Path:
    """``parts`` under the user's folder when that file or folder is there, else under the shipped one."""
    own = user_dir()
    if own is not None and own.joinpath(*parts).exists():
        return own.joinpath(*parts)
    return shipped_dir().joinpath(*parts)


def infra_files(folder: str, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in ``folder`` of both folders, the user's winning on a shared name."""
    found: dict[str, Path] = {}
    own = user_dir()
    for root in (shipped_dir(), own) if own is not None else (shipped_dir(),):
        for path in sorted((root / folder).glob(pattern)):
            found[path.name] = path
    return [found[name] for name in sorted(found)]


def describe() -> str:
    """One line saying which folder a command uses, for the commands to print."""
    own = user_dir()
    if own is None:
        return f"infra: shipped configs ({shipped_dir()})"
    return f"infra: {shown_path(own)} (your own), shipped configs for the rest"


def _is_shipped(path: Path) -> bool:
    return path.resolve() == shipped_dir().resolve()


def shown_path(path: Path) -> str:
    """``path`` as the user would type it: relative to the current directory when inside it."""
    try:
        return f"./{path.relative_to(Path.cwd().resolve())}"
    except ValueError:
        return str(path)
