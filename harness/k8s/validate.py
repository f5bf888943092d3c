"""``harness k8s validate``: every manifest against the official schemas, offline and strict.

The schemas come with the ``kubernetes-validate`` package (one set per Kubernetes release);
strict means a field the schema does not know, a typo for instance, is an error. Each
problem names the file, the object and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate

from harness.k8s.manifests import read_objects

# The releases the shipped manifests are held to: the newest the package knows and the two before.
SUPPORTED_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")


@dataclass(frozen=True)
class Problem:
    where: str  # file: Kind/name
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}" if self.field else f"{self.where}: {self.message}"


def validate(paths: Iterable[Path], versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Problem]:
    problems: list[Problem] = []
    for item in read_objects(paths):
        problems += validate_body(item.body, item.label, versions)
    return problems


def validate_body(body: dict[str, Any], label: str, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Problem]:
    """One object's problems; ``label`` names it in each."""
    problems: list[Problem] = []
    for version in versions:
        try:
            kubernetes_validate.validate(body, version, strict=True)
        except kubernetes_validate.ValidationError as exc:  # jsonschema's error, copied
            field = ".".join(str(part) for part in exc.absolute_path)
            problems.append(Problem(label, field, f"{exc.message} (Kubernetes {version})"))
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            problems.append(Problem(label, "", f"{exc} (Kubernetes {version})"))
    return problems
