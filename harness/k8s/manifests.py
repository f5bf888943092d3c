"""Kubernetes manifests read from files: every object with the file it came from.

Kustomization files are the kustomize tool's, not Kubernetes objects; they are read for
the overlays' own check (every file they name exists) and left out of the objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError


@dataclass(frozen=True)
class K8sObject:
    path: Path
    index: int  # the document's position in its file
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "?"))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", "?"))

    @property
    def label(self) -> str:
        """How messages name it: ``file: Kind/name``, the file relative to here when it can be."""
        path = self.path.resolve()
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        return f"{shown}: {self.kind}/{self.name}"


def manifest_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"})
        elif path.is_file():
            files.append(path)
        else:
            raise SpecError(f"no manifest at {path}")
    return files


def is_kustomization(path: Path) -> bool:
    return path.name in {"kustomization.yaml", "kustomization.yml", "Kustomization"}


def read_objects(paths: Iterable[Path]) -> list[K8sObject]:
    objects = []
    for path in manifest_files(paths):
        if is_kustomization(path):
            continue
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not YAML: {exc}") from exc
        objects += [K8sObject(path, index, body) for index, body in enumerate(documents) if isinstance(body, dict)]
    return objects
