"""Which session checks a session workload's run calls for, on the sessions its load sampled."""

from __future__ import annotations

from harness.checks.fault_rows import counts_together
from harness.checks.sessions import SESSIONS_BALANCED, consistent_snapshots, session_balance
from harness.checks.verdict import Verdict, not_applicable
from harness.run.context import RunContext
from harness.run.load import RunLoad
from harness.runtimes.base import Instance

SETTLE_S = 0.5  # after the last user has spawned: its first session has reached an instance


def session_verdicts(context: RunContext, load: RunLoad, instances: list[Instance], duration: float) -> list[Verdict]:
    """Open sessions per instance against least_conn's bound, for algorithms meant to spread evenly.

    least_conn claims it; round robin and random make no such claim about connections, and the
    check shows by how much they miss it (the seed: round robin "may overload slower instances").
    """
    spec = context.spec
    if not spec.workload.has_sessions:
        return []
    algorithm = context.algorithm
    if algorithm.sticky or (algorithm.spread != "even" and not algorithm.avoids_busy):
        return [not_applicable(SESSIONS_BALANCED, f"{algorithm.name} does not mean to spread sessions evenly")]
    if len({weight for _, weight in context.peer_weights(instances)}) > 1:
        return [not_applicable(SESSIONS_BALANCED, "the servers have weights: an even count is not the aim")]
    if algorithm.avoids_busy and not counts_together(context.workers, context.zone):
        return [
            not_applicable(
                SESSIONS_BALANCED,
                f"{context.workers} workers each count their own connections without a shared zone: "
                "add `zone NAME 64k;` to the upstream to judge the sum",
            )
        ]
    ramp = spec.users / spec.spawn_rate + SETTLE_S
    snapshots = consistent_snapshots(load.sessions, load.started_at, after=ramp, until=duration)
    return [session_balance(snapshots, spec.users, spec.workload.session_word)]
