"""Caddy's own record of every attempt on an upstream: its reverse proxy's debug log.

Caddy's access log names no upstream; at debug level its reverse proxy logs each round trip
(``upstream roundtrip``) with the upstream, how long it took, and the status or the error.
The run writes that log to ``proxy.log`` beside the access log, and this module reads it into
the same attempts table as nginx's (see ``harness.balancers.nginx.access_log.attempts``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

PROXY_LOG = "proxy.log"
_COLUMNS = ["start", "end", "msec", "address", "upstream_status", "failed", "try", "tries", "pid", "request_status"]


def attempts(access_log: Path) -> pd.DataFrame:
    """One row per attempt, from the proxy log beside ``access_log``.

    An attempt that failed and the next attempt from the same client connection for the same
    URI are one request tried twice (Caddy retries on the connection's request within its
    ``lb_try_duration``); ``try`` and ``tries`` count them. Status "-" is an attempt that got no
    answer (refused, reset, timed out), as in nginx's log.
    """
    path = access_log.parent / PROXY_LOG
    trips: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a stop
            if entry.get("msg") == "upstream roundtrip":
                trips.append(entry)
    rows: list[dict[str, Any]] = []
    open_requests: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for trip in sorted(trips, key=lambda t: float(t["ts"])):
        request = trip.get("request", {})
        key = (str(request.get("remote_ip")), str(request.get("remote_port")), str(request.get("uri")))
        status = str(trip["status"]) if "status" in trip else "-"
        end = float(trip["ts"])
        row = {
            "start": end - float(trip.get("duration", 0.0)), "end": end, "msec": end,
            "address": str(trip.get("upstream", "")), "upstream_status": status,
            "failed": status == "-" or status.startswith("5"), "pid": 0,
        }  # fmt: skip
        tries = open_requests.setdefault(key, [])
        tries.append(row)
        if not row["failed"]:
            _close(open_requests.pop(key), status, rows)
    for tries in open_requests.values():
        _close(tries, "502", rows)  # every attempt failed: Caddy answered 502
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    return frame.sort_values("start", kind="stable").reset_index(drop=True)


def _close(tries: list[dict[str, Any]], status: str, rows: list[dict[str, Any]]) -> None:
    for index, row in enumerate(tries):
        rows.append({**row, "try": index, "tries": len(tries), "request_status": status, "msec": tries[-1]["end"]})
