"""Which session checks a session workload's run calls for, on the sessions its load sampled."""

from __future__ import annotations

from harness.balancers.base import Balancer
from harness.checks.fault_rows import counts_together
from harness.checks.lost_instance_sessions import Lost, sessions_around_a_hung_instance, sessions_around_a_lost_instance
from harness.checks.reload_sessions import Reload, no_new_session_on_old_workers, sessions_survive_reload
from harness.checks.scale_out_sessions import ScaleOut, new_sessions_to_new_instances
from harness.checks.sessions import (
    SESSIONS_BALANCED,
    Slow,
    balance_while_slow,
    consistent_snapshots,
    session_balance,
)
from harness.checks.verdict import Verdict, not_applicable
from harness.results.faults import FaultRecord
from harness.run.context import RunContext
from harness.run.load import RunLoad
from harness.run.served_sessions import served_sessions
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
    reason = _unjudged(context, instances)
    if reason is not None:
        return [not_applicable(SESSIONS_BALANCED, reason)]
    snapshots = consistent_snapshots(load.sessions, load.started_at, after=_ramp(context), until=duration)
    return [session_balance(snapshots, spec.users, spec.workload.session_word)]


def _ramp(context: RunContext) -> float:
    return context.spec.users / context.spec.spawn_rate + SETTLE_S


def scenario_session_verdicts(
    context: RunContext,
    load: RunLoad,
    records: list[FaultRecord],
    generations: list[tuple[float, list[Instance]]],
    balancer: Balancer,
) -> list[Verdict]:
    """Under a scenario: the balance until the first fault, and each scale-out's new sessions."""
    if not context.spec.workload.has_sessions:
        return []
    first = min((r.injected_at for r in records if r.injected_at is not None), default=None)
    until = (first - load.started_at) if first is not None else context.spec.duration
    verdicts = session_verdicts(context, load, generations[0][1] if generations else [], until)
    if _unjudged(context, generations[0][1] if generations else []) is not None:
        return verdicts
    snapshots = consistent_snapshots(load.sessions, load.started_at, after=_ramp(context))
    opened = load.opened_sessions()
    for scale in _scale_outs(records, generations, load.started_at):
        verdicts.append(new_sessions_to_new_instances(opened, snapshots, scale, context.spec.users, load.started_at))
    kind = context.spec.workload.session_word
    for reload in _reloads(records, load.started_at):
        verdicts.append(sessions_survive_reload(opened, reload, load.started_at, kind))
    verdicts += _old_worker_verdicts(context, records, balancer, load.started_at)
    load_end = load.started_at + context.spec.duration
    for lost in _lost_instances(records, load.started_at, load_end, LOST_KINDS):
        verdicts.append(sessions_around_a_lost_instance(opened, lost, load.started_at, kind))
    for hung in _lost_instances(records, load.started_at, load_end, ("hang",)):
        verdicts.append(sessions_around_a_hung_instance(opened, hung, load.started_at, kind))
    for record in records:
        if record.kind == "slow" and record.injected_at is not None:
            since, until = record.injected_at - load.started_at, (record.rolled_back_at or load_end) - load.started_at
            slow = Slow(record.instance, since, until)
            verdicts.append(balance_while_slow(snapshots, opened, slow, context.spec.users, kind, load.started_at))
    return verdicts


LOST_KINDS = ("kill", "stop")  # the process is gone until the rollback starts it again


def _lost_instances(
    records: list[FaultRecord], load_start: float, load_end: float, kinds: tuple[str, ...]
) -> list[Lost]:
    lost = []
    for record in records:
        if record.kind not in kinds or record.injected_at is None or record.inject_returned_at is None:
            continue
        signalled, gone = record.injected_at - load_start, record.inject_returned_at - load_start
        lost.append(Lost(record.instance, signalled, gone, (record.rolled_back_at or load_end) - load_start))
    return lost


def _reloads(records: list[FaultRecord], load_start: float) -> list[Reload]:
    """Each reload step: the signal, and when the reload saw the last old worker gone (it returns then)."""
    reloads = []
    for record in records:
        if record.kind != "reload" or record.injected_at is None:
            continue
        returned = record.inject_returned_at
        lived = None if record.error or returned is None else returned - record.injected_at
        reloads.append(Reload(record.injected_at - load_start, lived))
    return reloads


def _scale_outs(
    records: list[FaultRecord], generations: list[tuple[float, list[Instance]]], load_start: float
) -> list[ScaleOut]:
    """Each scale step that added instances: the ones it added, from when the balancer was told (the
    reload returns only once the old workers have ended their sessions, long after the new took over)."""
    outs = []
    for record in records:
        if record.kind != "scale" or record.injected_at is None or record.inject_returned_at is None:
            continue
        made = [i for i, (at, _) in enumerate(generations) if record.injected_at <= at <= record.inject_returned_at]
        if not made or made[0] == 0:
            continue
        before = {instance.name for instance in generations[made[0] - 1][1]}
        after = [instance.name for instance in generations[made[0]][1]]
        new = tuple(name for name in after if name not in before)
        if new:
            outs.append(ScaleOut(generations[made[0]][0] - load_start, new, len(after), tuple(after)))
    return outs


def _unjudged(context: RunContext, instances: list[Instance]) -> str | None:
    """Why the session checks do not apply to this run, or None."""
    algorithm = context.algorithm
    if algorithm.sticky or (algorithm.spread != "even" and not algorithm.avoids_busy):
        return f"{algorithm.name} does not mean to spread sessions evenly"
    if len({weight for _, weight in context.peer_weights(instances)}) > 1:
        return "the servers have weights: an even count is not the aim"
    if algorithm.avoids_busy and not counts_together(context.workers, context.zone):
        return (
            f"{context.workers} workers each count their own connections without a shared zone: "
            "add `zone NAME 64k;` to the upstream to judge the sum"
        )
    return None


def _old_worker_verdicts(
    context: RunContext, records: list[FaultRecord], balancer: Balancer, load_start: float
) -> list[Verdict]:
    """Each reload step's retired workers against the sessions the balancer logged after it."""
    retired = getattr(balancer, "retired_workers", [])
    reload_times = [r.injected_at for r in records if r.kind == "reload" and r.injected_at is not None]
    if not retired or not reload_times:
        return []
    served = served_sessions(context.config.balancer, balancer.access_log)
    if served is None:
        return []
    kind = context.spec.workload.session_word
    verdicts = []
    for injected in reload_times:
        # The reload's own signal: the first one sent once the step began.
        signalled, old = next(((at, pids) for at, pids in retired if at >= injected), (None, frozenset()))
        if signalled is not None:
            verdicts.append(no_new_session_on_old_workers(served, signalled, old, load_start, kind))
    return verdicts
