"""Locust against a balancer the harness (or you) started, with per-instance counts.

    locust -f locustfiles/balancer.py --host http://127.0.0.1:PORT --headless -u 10 -t 10s

Each simulated user sends from its own loopback address (127.10.0.1, 127.10.1.1, ...), so
ip_hash sees distinct clients. Every response names its instance in ``X-Instance``; the
counts per instance are printed when Locust stops. ``harness bench`` uses the same user
class through Locust's library API.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from locust import events

from harness.backends import INSTANCE_HEADER
from harness.load.users import make_user_class

BalancerClient = make_user_class(host=None)
per_instance: Counter[str] = Counter()


@events.request.add_listener
def count_instance(response: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    headers = getattr(response, "headers", None) or {}
    per_instance[headers.get(INSTANCE_HEADER) or "(no instance)"] += 1


@events.quitting.add_listener
def print_instances(**_: Any) -> None:
    total = sum(per_instance.values()) or 1
    print("requests per instance:")
    for instance, count in sorted(per_instance.items()):
        print(f"  {instance:<20} {count:>8}  {count / total:6.1%}")
