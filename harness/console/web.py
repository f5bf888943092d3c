"""The Backends tab: the live console mounted on Locust's own web UI (Flask).

Two views of the same :class:`~harness.console.live.LiveBackends`:

- a "Backends" tab inside Locust's UI, through its documented extension points
  (``extended_tabs`` / ``extended_tables`` template arguments, and ``extended_stats`` added
  to the ``/stats/requests`` answer the UI polls every two seconds);
- ``/backends``, a page of the harness's own with the same table, a button per fault and
  instance, and a time line of requests per second per instance with a marker at every
  fault and rollback, refreshed every second. Locust's tab links to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from harness.console.live import CONSOLE_FAULTS, LiveBackends
from harness.errors import HarnessError

PAGE = Path(__file__).resolve().parent / "static" / "backends.html"
TAB_KEY = "backends"
COLUMNS = [
    ("instance", "Instance"),
    ("address", "Address"),
    ("requests", "Requests"),
    ("share", "Share"),
    ("expected_share", "Expected share"),
    ("errors", "Errors"),
    ("active", "Active"),
    ("sessions", "Open sessions"),
    ("health", "Health (balancer's view)"),
    ("fault", "Fault"),
]


def _tab_rows(live: LiveBackends) -> list[dict[str, Any]]:
    rows = []
    for row in live.snapshot():
        rows.append(
            {
                **row.__dict__,
                "share": f"{row.share:.1%}",
                "expected_share": "-" if row.expected_share is None else f"{row.expected_share:.1%}",
                "active": "-" if row.active is None else row.active,
                "sessions": "-" if row.sessions is None else row.sessions,
                "fault": row.fault or "-",
            }
        )
    return rows


def blueprint(live: LiveBackends) -> Blueprint:
    routes = Blueprint("harness_backends", __name__)

    @routes.route("/backends")
    def page() -> Response:
        return Response(PAGE.read_text(), mimetype="text/html")

    @routes.route("/backends/data")
    def data() -> Response:
        return jsonify(
            {
                "rows": [row.__dict__ for row in live.snapshot()],
                "faults": list(CONSOLE_FAULTS),
                **live.series(),
            }
        )

    @routes.route("/backends/fault", methods=["POST"])
    def inject() -> tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        try:
            marker = live.inject(str(body.get("kind", "")), str(body.get("instance", "")))
        except (KeyError, HarnessError) as exc:
            return jsonify({"error": str(exc).strip("'\"")}), 400
        return jsonify(marker.__dict__), 200

    @routes.route("/backends/rollback", methods=["POST"])
    def rollback() -> tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        marker = live.rollback(str(body.get("instance", "")))
        if marker is None:
            return jsonify({"error": f"no fault on {body.get('instance')!r} to roll back"}), 400
        return jsonify(marker.__dict__), 200

    return routes


def attach(environment: Any, live: LiveBackends) -> None:
    """Mounts the console on ``environment``'s Locust web UI and wires it to its events."""
    web_ui = environment.web_ui
    web_ui.app.register_blueprint(blueprint(live))
    web_ui.template_args["extended_tabs"] = [{"title": "Backends", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}
    ]
    # Shown under "Download Data": the way from Locust's UI to the page with the fault buttons.
    web_ui.template_args["extended_csv_files"] = [
        {"href": "/backends", "title": "Backends console: inject and roll back faults, time line with markers"}
    ]

    def add_backends(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        stats = json.loads(response.get_data())
        stats["extended_stats"] = [{"key": TAB_KEY, "data": _tab_rows(live)}]
        response.set_data(json.dumps(stats))
        return response

    web_ui.app.after_request(add_backends)

    environment.events.request.add_listener(live.on_request)
    environment.events.reset_stats.add_listener(live.reset)
