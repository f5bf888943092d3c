"""The three ways a balancer finds a failed peer, as the settings the failover checks judge by:
passive checks from real requests (nginx's max_fails and fail_timeout, the same rule in
client-side balancing, Caddy's passive checks), active checks of its own (HAProxy's inter,
fall, rise), and Kubernetes readiness probes that take a pod out of a Service's endpoints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PassiveChecks:
    """How a balancer takes a failing peer out and tries a request elsewhere; nginx's names by default."""

    max_fails: int
    fail_timeout: float
    next_upstream: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    # What the balancer calls these settings, for verdicts that name them.
    retry_setting: str = "proxy_next_upstream"
    connect_setting: str = "proxy_connect_timeout"
    read_setting: str = "proxy_read_timeout"
    # Whether requests may go out on connections opened before (upstream keepalive, or a client's own pool).
    reuses_connections: bool = False
    # Active checks beside the passive ones (Caddy's health_uri): a peer they marked down comes back
    # only at the first check that passes after it is up again, this many seconds at most.
    active_interval: float = 0.0

    def retries(self, condition: str) -> bool:
        """Whether nginx passes a request to the next peer on ``condition`` (error, timeout, http_503...)."""
        return "off" not in self.next_upstream and condition in self.next_upstream


@dataclass(frozen=True)
class ActiveChecks:
    """The settings that decide how HAProxy finds and routes around a failed server."""

    enabled: bool  # `check` on the servers
    inter: float  # seconds between checks
    fall: int  # failed checks that mark a server DOWN
    rise: int  # passed checks that mark it UP again
    redispatch: bool  # a request whose server failed may go to another server
    retries: int
    http: bool = False  # `option httpchk`: checks request the health endpoint, not just connect
    check_timeout: float = 0.0  # `timeout check`, else inter

    def detect_within(self, unanswered: bool) -> float:
        """Latest a failed server is marked DOWN. HAProxy starts the next check ``inter`` after
        the previous one ends; a refused check ends at once, an unanswered one (hung server,
        dropped SYNs) only at its timeout: up to one interval until the first check, then
        fall checks."""
        timeout = (self.check_timeout or self.inter) if unanswered else 0.0
        return self.inter + self.fall * timeout + (self.fall - 1) * self.inter + (0.0 if unanswered else self.inter)

    @property
    def recover_within(self) -> float:
        return self.rise * self.inter + self.inter


@dataclass(frozen=True)
class Readiness:
    """A readiness probe's settings, with Kubernetes' defaults."""

    path: str = "/api/health"
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1

    @property
    def removal_within_s(self) -> float:
        """The longest a failing pod stays an endpoint: the next probe can be a period away,
        then failureThreshold probes a period apart, the last one waiting its timeout."""
        return self.period_s * self.failure_threshold + self.timeout_s
