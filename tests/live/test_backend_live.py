"""A real backend instance: endpoints, knobs, and the control endpoint."""

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load.probes import get
from harness.runtimes.base import Instance, InstanceSpec
from harness.runtimes.local import LocalProcessRuntime

pytestmark = pytest.mark.lb


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    with LocalProcessRuntime(tmp_path) as runtime:
        (started,) = runtime.start([InstanceSpec("b1", "api", "127.0.1.1")])
        yield started


def fetch(
    host: str, port: int, path: str, method: str = "GET", body: dict[str, object] | None = None
) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_health_follows_the_control_endpoint(instance: Instance) -> None:
    status, body = fetch(instance.host, instance.port, "/api/health")
    assert (status, body["status"], body["instance"]) == (200, "healthy", "b1")
    assert set(body["checks"]) == {"database", "redis", "memory", "disk"}  # type: ignore[arg-type]
    fetch(instance.host, instance.control_port, "/control/mode", "POST", {"healthy": False})
    status, body = fetch(instance.host, instance.port, "/api/health")
    assert (status, body["status"]) == (503, "unhealthy")


def test_count_rises_per_instance(instance: Instance) -> None:
    counts = [fetch(instance.host, instance.port, "/api/count")[1]["count"] for _ in range(3)]
    assert counts == [1, 2, 3]


def test_status_and_delay_knobs(instance: Instance) -> None:
    url = f"http://{instance.host}:{instance.port}"
    assert get(url, "/api/count?status=503").status == 503
    slow = get(url, "/api/count?delay=200ms")
    assert slow.finished - slow.started >= 0.2
    assert get(url, "/api/count?status=abc").status == 400
    assert get(url, "/api/slow?ms=abc").status == 400
    assert get(url, "/api/slow?ms=0.05s").status == 200


def test_control_reports_active_requests_and_failing_mode(instance: Instance) -> None:
    fetch(instance.host, instance.control_port, "/control/mode", "POST", {"fail_rate": 1.0})
    assert fetch(instance.host, instance.port, "/api/count")[0] == 503
    status, state = fetch(instance.host, instance.control_port, "/control/state")
    assert status == 200 and state["active"] == 0 and state["served"] == 1
    assert fetch(instance.host, instance.control_port, "/control/mode", "POST", {"bogus": 1})[0] == 400


def test_a_delay_distribution_set_at_run_time(instance: Instance) -> None:
    fetch(instance.host, instance.control_port, "/control/mode", "POST", {"delay": "120ms:100"})
    url = f"http://{instance.host}:{instance.port}"
    slow = get(url, "/api/count")
    assert slow.finished - slow.started >= 0.12
    status, body = fetch(instance.host, instance.control_port, "/control/mode", "POST", {"delay": "never"})
    assert status == 400 and "not a duration" in str(body["error"])


def test_any_path_reaches_the_endpoint_its_last_segment_names(instance: Instance) -> None:
    """A balancer that rewrites URIs (`proxy_pass http://app/;` under `location /api/`) still reaches one."""
    connection = http.client.HTTPConnection(instance.host, instance.port, timeout=5)
    try:
        connection.request("GET", "/count")
        response = connection.getresponse()
        assert (response.status, response.getheader("X-Instance-Path")) == (200, "/count")
        assert json.loads(response.read())["count"] == 1
    finally:
        connection.close()
    status, body = fetch(instance.host, instance.port, "/shop/v2/health")
    assert (status, body["status"]) == (200, "healthy")
    status, body = fetch(instance.host, instance.port, "/static/logo.png")
    assert (status, body["count"]) == (200, 2)


SESSIONS_CLIENT = r"""
import asyncio, json, sys
import aiohttp

async def main(base, control):
    out = {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(base + "/api/ws?every=50ms&hold=1s") as ws:
            out["ws_instance"] = ws._response.headers.get("X-Instance")
            await ws.send_str("hello")
            echoed, ticks = None, 0
            async with session.get(control + "/control/state") as state:
                out["open_during"] = (await state.json())["sessions"]
            async for message in ws:
                if message.data == "hello":
                    echoed = message.data
                else:
                    ticks += 1
            out["echoed"], out["ticks"] = echoed, ticks
        async with session.get(base + "/api/sse?events=3&every=10ms") as response:
            out["sse_type"] = response.headers["Content-Type"]
            out["sse"] = [line for line in (await response.text()).splitlines() if line.startswith("data: ")]
        async with session.get(base + "/api/stream?bytes=200000&rate=1000000") as response:
            started = asyncio.get_running_loop().time()
            out["stream_bytes"] = len(await response.read())
            out["stream_s"] = asyncio.get_running_loop().time() - started
        async with session.post(base + "/api/upload", data=b"y" * 100000) as response:
            out["upload"] = await response.json()
        async with session.get(control + "/control/state") as state:
            out["open_after"] = (await state.json())["sessions"]
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_sessions_echo_tick_stream_and_are_counted_while_open(instance: Instance) -> None:
    import subprocess
    import sys

    # An asyncio client in a process of its own: this one may run under Locust's gevent patches.
    base = f"http://{instance.host}:{instance.port}"
    control = f"http://{instance.host}:{instance.control_port}"
    done = subprocess.run(
        [sys.executable, "-c", SESSIONS_CLIENT, base, control], capture_output=True, text=True, timeout=30, check=True
    )
    out = json.loads(done.stdout)
    assert out["ws_instance"] == "b1" and out["echoed"] == "hello", out
    assert 1 <= out["ticks"] <= 21, out  # one every 50 ms at most, for a 1 s hold
    assert out["open_during"]["websocket"] == 1, out
    assert out["sse_type"] == "text/event-stream" and len(out["sse"]) == 3, out
    assert json.loads(out["sse"][0].removeprefix("data: ")) == {"instance": "b1", "n": 1}, out
    assert out["stream_bytes"] == 200000 and out["stream_s"] >= 0.15, out  # 200 kB at 1 MB/s
    assert out["upload"] == {"instance": "b1", "bytes": 100000}, out
    assert out["open_after"] == {"websocket": 0, "sse": 0, "stream": 0, "upload": 0, "grpc": 0}, out
