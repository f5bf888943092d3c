"""The harness's side of an instance's control endpoint (never routed through the balancer)."""

from __future__ import annotations

import http.client
import json
from typing import Any

from harness.backends.instance import Instance
from harness.errors import HarnessError


def _call(
    instance: Instance, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    connection = http.client.HTTPConnection(instance.host, instance.control_port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, f"/control{path}", body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        if response.status != 200:
            raise HarnessError(f"{instance.name} refused {method} /control{path}: {answer.get('error', answer)}")
        return answer
    finally:
        connection.close()


def state(instance: Instance, timeout: float = 5.0) -> dict[str, Any]:
    """Requests served, active requests, uptime and mode of the instance."""
    return _call(instance, "GET", "/state", timeout=timeout)


def set_mode(instance: Instance, **mode: Any) -> dict[str, Any]:
    """Changes the instance's behaviour: healthy, delay_ms, fail_rate, fail_status."""
    return _call(instance, "POST", "/mode", mode)


def reset(instance: Instance) -> dict[str, Any]:
    """Back to a healthy instance with no added delay or failures."""
    return _call(instance, "POST", "/reset", {})


def set_backlog(instance: Instance, backlog: int) -> dict[str, Any]:
    """Changes the listen backlog of the instance's service socket."""
    return _call(instance, "POST", "/backlog", {"backlog": backlog})


def rename(instance: Instance, name: str) -> dict[str, Any]:
    """Makes the instance answer as ``name`` in ``X-Instance`` from now on."""
    return _call(instance, "POST", "/name", {"name": name})
