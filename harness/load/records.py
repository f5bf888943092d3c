"""Every request the load driver sends, attributed to the instance that served it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.backends import INSTANCE_HEADER
from harness.load.route import Answer

# ``connection``: the client connection a call went over, where the load keeps one for many calls (gRPC).
COLUMNS = ["time", "client", "instance", "status", "latency_ms", "name", "error", "connection"]


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in COLUMNS})


@dataclass
class RequestRecorder:
    """A listener for Locust's ``request`` event; ``frame()`` gives one row per request.

    ``instance`` is the ``X-Instance`` header of the response, empty when no instance
    answered (a connection error or a balancer-generated error page).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        # Locust's responses carry status_code and headers; a client-side balancer's, an Answer.
        if isinstance(response, Answer):
            status, instance = response.status, response.header(INSTANCE_HEADER)
        else:
            status = getattr(response, "status_code", 0)
            instance = (getattr(response, "headers", None) or {}).get(INSTANCE_HEADER, "") or ""
        self.rows.append(
            {
                "time": start_time,
                "client": (context or {}).get("client", ""),
                "instance": instance,
                "status": int(status or 0),
                "latency_ms": float(response_time),
                "name": name,
                "error": "" if exception is None else f"{type(exception).__name__}: {exception}",
                "connection": (context or {}).get("connection", ""),
            }
        )

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return empty_frame()
        return pd.DataFrame(self.rows, columns=COLUMNS)
