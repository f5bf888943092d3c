"""Deletes a run's namespace: ``python -m harness.k8s.cleanup NAMESPACE CONTEXT``.

The reaper runs this when the harness died before deleting the namespace itself; it
deletes only namespaces the harness labelled as its own.
"""

from __future__ import annotations

import sys

from harness.k8s.api import ClusterUnreachable, connect
from harness.k8s.topology import MANAGED_BY


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m harness.k8s.cleanup NAMESPACE CONTEXT", file=sys.stderr)
        return 2
    namespace, context = argv
    try:
        api = connect(context)
    except ClusterUnreachable as exc:
        print(exc, file=sys.stderr)
        return 1
    from kubernetes.client.exceptions import ApiException

    try:
        metadata = api.core.read_namespace(namespace).metadata
        labels = (metadata.labels if metadata is not None else None) or {}
    except ApiException as exc:
        if exc.status == 404:
            return 0  # already gone
        raise
    if any(labels.get(key) != value for key, value in MANAGED_BY.items()):
        print(f"namespace {namespace} is not one of the harness's: left alone", file=sys.stderr)
        return 1
    api.delete_namespace(namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
