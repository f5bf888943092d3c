"""HAProxy's log lines (the harness's log-format) in the same DataFrame shape as nginx's access log.

HAProxy logs one line per request with the server that answered last and the number of
retries (``%rc``), not every attempt's address; ``upstream_addrs`` therefore holds the
final server only, and ``attempts`` is 1 + retries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.balancers.nginx.access_log import COLUMNS

_FIELDS = [
    "ts", "ms", "client", "method", "uri", "status", "server_addr", "retries",
    "tr", "ta", "pid", "server", "tc", "th", "ti",
]  # fmt: skip


def _ms(value: str) -> int:
    """A HAProxy timer in milliseconds; -1 when the phase never happened."""
    return int(value) if value.lstrip("-").isdigit() else -1


def read_access_log(path: Path) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            values = line.split("\t")
            if len(values) != len(_FIELDS):
                continue  # HAProxy's own notices, or a line cut short
            field = dict(zip(_FIELDS, values, strict=True))
            if field["method"] == "<BADREQ>":
                continue  # a connection that sent no request (the harness's readiness probe)
            total_ms = max(_ms(field["ta"]), 0)
            server_ms = _ms(field["tr"])
            # %Ts.%ms is when the connection was accepted (or, on a kept-alive connection, when
            # the previous request ended); the request itself began after handshake and idle time.
            begun = (
                int(field["ts"])
                + int(field["ms"]) / 1000
                + (max(_ms(field["th"]), 0) + max(_ms(field["ti"]), 0)) / 1000
            )
            address = "" if field["server"] in {"<NOSRV>", "-"} else field["server_addr"]
            rows.append(
                {
                    "msec": begun + total_ms / 1000,
                    "remote_addr": field["client"],
                    "method": field["method"],
                    "uri": field["uri"],
                    "status": int(field["status"]) if field["status"].isdigit() else 0,
                    "upstream_addr": address or "-",
                    "upstream_status": field["status"] if address and server_ms >= 0 else "-",
                    "upstream_response_time": f"{server_ms / 1000:.3f}" if server_ms >= 0 else "-",
                    "request_time": total_ms / 1000,
                    "pid": field["pid"],
                    "connection": "",
                    "retries": int(field["retries"].lstrip("+")) if field["retries"].lstrip("+").isdigit() else 0,
                    # %rc starts with "+" when the last retry went to another server.
                    "redispatched": field["retries"].startswith("+"),
                }
            )
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "retries", "redispatched"])
    frame["redispatched"] = frame["redispatched"].astype(bool)
    frame["msec"] = frame["msec"].astype(float)
    frame["status"] = frame["status"].astype(int)
    frame["upstream_addrs"] = frame["upstream_addr"].map(lambda a: [] if a == "-" else [a])
    frame["upstream_statuses"] = frame["upstream_status"].map(lambda s: [] if s == "-" else [s])
    frame["attempts"] = 1 + frame["retries"].astype(int)
    frame["retried"] = frame["retries"].astype(int) > 0
    return frame
