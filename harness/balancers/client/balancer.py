"""Client-side balancing: no balancer process; the clients pick instances from the registry.

:class:`ClientSideBalancer` stands where a balancer process would, so a run treats it like
one: ``start`` and ``reload`` publish the instances to the registry the clients read,
``stop`` closes its log. It is also the clients' :class:`~harness.load.route.Route`: every
request asks it for an instance, tries the next one when an attempt fails in a way the
config retries, and leaves one line in the run's ``access.log`` in nginx's format (every
attempt's address, status and time), so the failover checks read it as they read nginx's.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from harness.balancers.base import BalancerDefaults
from harness.balancers.client.config import ClientConfig
from harness.balancers.client.health import PassiveHealth
from harness.balancers.client.policies import Target, make_policy
from harness.balancers.nginx.access_log import CLIENT_CLOSED
from harness.load.route import Answer, Attempt
from harness.runtimes.base import Instance

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class NoLiveInstanceError(ConnectionError):
    """Every instance of the service is out, or has been tried for this request."""


def _condition(error: OSError | None, answer: Answer | None) -> str | None:
    """What went wrong with one attempt, in the names ``retry_on`` uses; None for an answer below 500."""
    if error is not None:
        return "timeout" if isinstance(error, TimeoutError) else "error"
    assert answer is not None
    return f"http_{answer.status}" if answer.status >= 500 else None


class ClientSideBalancer(BalancerDefaults):
    name = "client"

    def __init__(self, config: ClientConfig, run_dir: Path, weights: dict[str, int] | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.checks = config.passive_checks()
        self._weights = weights or {}
        self._outstanding: dict[str, int] = {}
        self._policy = make_policy(config.policy, self._outstanding)
        self._health = PassiveHealth(self.checks.max_fails, self.checks.fail_timeout)
        self._targets: list[Target] = []
        self._addresses: dict[str, str] = {}
        self._lock = threading.Lock()
        self._log: IO[str] | None = None

    # The Balancer side: what a run starts, reloads and stops.

    @property
    def url(self) -> str:
        return f"client-side {self.config.policy} over {', '.join(self.config.services)}"

    @property
    def description(self) -> str:
        return self.url

    @property
    def route(self) -> ClientSideBalancer:
        return self

    @property
    def config_path(self) -> Path:
        return self.run_dir / "client.toml"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "access.log"

    @property
    def pid(self) -> int | None:
        return None  # nothing runs apart from the clients

    @property
    def connect_timeout(self) -> float:
        return self.checks.connect_timeout

    @property
    def read_timeout(self) -> float:
        return self.checks.read_timeout

    def start(self, instances: Sequence[Instance]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.config.path, self.config_path)
        self._log = self.access_log.open("a", buffering=64 * 1024)
        self.reload(instances)

    def reload(self, instances: Sequence[Instance]) -> float:
        """Publishes ``instances`` to the registry; clients pick from them from their next request."""
        started = time.monotonic()
        weight_of = {peer.service: peer.weight for peer in self.config.peers()}
        with self._lock:
            self._targets = [
                Target(instance.name, self._weights.get(instance.name, weight_of.get(instance.service, 1)))
                for instance in instances
                if instance.service in weight_of
            ]
            self._addresses = {instance.name: instance.address for instance in instances}
        return time.monotonic() - started

    def stop(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def out_of_rotation(self) -> list[str]:
        """The instances the clients would not pick now."""
        with self._lock:
            return self._health.out(time.time())

    # The Route side: what every client request goes through.

    def _choose(self, client: str, tried: set[str]) -> Target | None:
        with self._lock:
            now = time.time()
            target = self._policy.pick(
                self._targets, lambda name: name not in tried and self._health.usable(name, now), client
            )
            if target is not None:
                self._health.picked(target.name, now)
                self._outstanding[target.name] = self._outstanding.get(target.name, 0) + 1
            return target

    def _finish(self, target: Target, failed: bool) -> None:
        with self._lock:
            self._outstanding[target.name] -= 1
            if failed:
                self._health.failed(target.name, time.time())
            else:
                self._health.succeeded(target.name)

    def send(self, method: str, path: str, client: str, attempt: Attempt) -> Answer:
        began = time.time()
        tried: set[str] = set()
        addresses: list[str] = []
        statuses: list[str] = []
        spent: list[float] = []
        answer: Answer | None = None
        error: OSError | None = None
        while (target := self._choose(client, tried)) is not None:
            tried.add(target.name)
            address = self._addresses[target.name]
            started = time.time()
            answer, error = None, None
            try:
                answer = attempt(f"http://{address}")
            except OSError as exc:
                error = exc
            except BaseException:
                # Locust stopping mid-request kills the user's greenlet. The pick was made, so it
                # is logged as nginx logs a client that left (499), and the stop goes on.
                self._finish(target, failed=False)
                spent.append(time.time() - started)
                picked = [*addresses, address]
                self._write_log(began, client, method, path, CLIENT_CLOSED, picked, [*statuses, "-"], spent)
                raise
            condition = _condition(error, answer)
            # As nginx counts them: no answer, or an answer retry_on names, is a failure.
            failed = condition in {"error", "timeout"} or (condition is not None and self.checks.retries(condition))
            self._finish(target, failed)
            addresses.append(address)
            statuses.append(str(answer.status) if answer is not None else ("504" if condition == "timeout" else "502"))
            spent.append(time.time() - started)
            if condition is None or not self.checks.retries(condition):
                break
            # A request that may have reached the instance is sent again only if doing it twice is harmless.
            if method not in IDEMPOTENT and not isinstance(error, ConnectionRefusedError):
                break
        status = answer.status if answer is not None else int(statuses[-1]) if statuses else 502
        self._write_log(began, client, method, path, status, addresses, statuses, spent)
        if answer is not None:
            return answer
        if error is not None:
            raise error
        raise NoLiveInstanceError(f"no live instance of {', '.join(self.config.services)} to send {method} {path} to")

    def _write_log(
        self,
        began: float,
        client: str,
        method: str,
        path: str,
        status: int,
        addresses: list[str],
        statuses: list[str],
        spent: list[float],
    ) -> None:
        ended = time.time()
        fields = [
            f"{ended:.6f}",
            client or "-",
            method,
            path,
            str(status),
            ", ".join(addresses) or "-",
            ", ".join(statuses) or "-",
            ", ".join(f"{seconds:.6f}" for seconds in spent) or "-",
            f"{ended - began:.6f}",
            str(os.getpid()),
            "",
            "-",  # no hash key: the client-side policies pick by their own state
        ]
        with self._lock:
            if self._log is not None:
                self._log.write("\t".join(fields) + "\n")
