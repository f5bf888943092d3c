"""The sessions a balancer logged: when each began and which worker process served it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.balancers.haproxy import access_log as haproxy_log
from harness.balancers.nginx import access_log as nginx_log
from harness.load.session_users import SESSION_NAMES

READERS = {"nginx": nginx_log.read_requests, "haproxy": haproxy_log.read_access_log}


def served_sessions(balancer: str, access_log: Path) -> pd.DataFrame | None:
    """``start`` (wall clock) and ``pid`` of each session in the log; None for a balancer whose
    log names no worker."""
    reader = READERS.get(balancer)
    if reader is None:
        return None
    log = reader(access_log)
    path = log["uri"].astype(str).str.split("?").str[0]
    sessions = log[path.str.endswith(SESSION_NAMES)]
    start = sessions["msec"].astype(float) - pd.to_numeric(sessions["request_time"], errors="coerce").fillna(0)
    return pd.DataFrame({"start": start, "pid": pd.to_numeric(sessions["pid"], errors="coerce")})
