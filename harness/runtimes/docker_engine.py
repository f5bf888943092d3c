"""The Docker engine the harness talks to, and the images it builds there itself.

The engine is ``$DOCKER_HOST``, else the harness's own (``make docker-engine`` starts one
with ``dockerd --bridge=none --iptables=false`` on ``/run/lb-harness-docker/docker.sock``),
else the system's. Images: a base made without any registry (``infra/docker/build-base.sh``:
debootstrap from Debian's mirror, imported into the engine), or the official
``python:3.11-slim-bookworm`` where a registry is reachable; on it, ``infra/docker/Dockerfile``
adds the harness. The runtime image is tagged with a digest of everything that goes into
it, so a second run finds it and builds nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import StartupError, ToolMissingError
from harness.infra import infra_path
from harness.tools import find_program

ENGINE_SOCKET = Path("/run/lb-harness-docker/docker.sock")
SYSTEM_SOCKET = Path("/var/run/docker.sock")
OFFLINE_BASE = "lb-harness/base:bookworm"
OFFICIAL_BASE = "python:3.11-slim-bookworm"
RUNTIME_REPOSITORY = "lb-harness/runtime"
LABEL = "org.lb-harness"  # on every image, container and network the harness makes
PACKAGE = Path(__file__).resolve().parent.parent


def engine_url() -> str | None:
    """Where the engine listens: $DOCKER_HOST, the harness's own socket, or the system's."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    for socket_path in (ENGINE_SOCKET, SYSTEM_SOCKET):
        if socket_path.exists():
            return f"unix://{socket_path}"
    return None


def engine() -> Any:
    """A client of a running engine; ToolMissingError saying how to start one otherwise."""
    import docker  # the SDK is needed by this runtime only

    url = engine_url()
    hint = "start one with `make docker-engine` (dockerd --bridge=none --iptables=false) or set DOCKER_HOST"
    if url is None:
        raise ToolMissingError(f"no Docker engine: {hint}")
    try:
        client = docker.DockerClient(base_url=url, timeout=120)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for an absent engine
        raise ToolMissingError(f"no Docker engine answers at {url} ({exc}): {hint}") from None
    return client


def _digest(base: str) -> str:
    files = sorted(path for path in PACKAGE.rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    digest = hashlib.sha256(base.encode())
    digest.update(infra_path("docker", "Dockerfile").read_bytes())
    for path in files:
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _has(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _build_offline_base(client: Any) -> None:
    if find_program("debootstrap") is None:
        raise ToolMissingError(
            f"the offline base image {OFFLINE_BASE} is missing and debootstrap is not installed: "
            "apt-get install debootstrap (make setup installs it), or use --docker-base official"
        )
    script = infra_path("docker", "build-base.sh")
    environment = {**os.environ, "DOCKER_HOST": engine_url() or ""}
    done = subprocess.run(["bash", str(script), OFFLINE_BASE], capture_output=True, text=True, env=environment)
    if done.returncode != 0 or not _has(client, OFFLINE_BASE):
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise StartupError(f"building {OFFLINE_BASE} with {script} failed: {tail}")


def ensure_runtime_image(client: Any, base: str = "offline") -> str:
    """The tag of the image every container of a run uses; built now only if it is missing."""
    base_image = OFFLINE_BASE if base == "offline" else OFFICIAL_BASE
    tag = f"{RUNTIME_REPOSITORY}:{_digest(base_image)}"
    if _has(client, tag):
        return tag
    if base == "offline" and not _has(client, OFFLINE_BASE):
        _build_offline_base(client)
    with tempfile.TemporaryDirectory(prefix="lb-harness-image-") as context:
        shutil.copytree(PACKAGE, Path(context) / "harness", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(infra_path("docker", "Dockerfile"), Path(context) / "Dockerfile")
        try:
            client.images.build(
                path=context, tag=tag, buildargs={"BASE": base_image}, network_mode="host", rm=True,
                labels={LABEL: "runtime"},
            )  # fmt: skip
        except Exception as exc:
            raise StartupError(f"building {tag} from {infra_path('docker', 'Dockerfile')} failed: {exc}") from None
    return tag
