"""What a config's server parameters claim, each judged on what the run recorded.

``down`` never gets a request; ``backup`` gets nothing while a primary serves; ``max_conns=N``
never has more than N requests in flight; ``hash KEY`` sends one key to one instance
whatever client sends it; ``hash KEY consistent`` moves only the removed instance's keys.
The expectations come from the config (``ServerClaims``), never from constants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.checks.verdict import Verdict


def idle_instances(counts: Mapping[str, int], idle: Mapping[str, str], total: int, where: str) -> list[Verdict]:
    """One verdict per ``instance -> role`` in ``idle`` (``down`` or ``backup``): it got no request.

    ``counts`` are requests per instance over a run in which every primary served.
    """
    verdicts = []
    for instance, role in idle.items():
        got = counts.get(instance, 0)
        check = f"{role} server {instance} gets no request" + (" while a primary serves" if role == "backup" else "")
        summary = f"{instance} ({role} in {where}) got {got} of {total} requests (expected 0)"
        verdicts.append(Verdict(check, got == 0, summary, {"requests": got, "total": total}, {"requests": 0}))
    return verdicts


def each_key_on_one_instance(picks: Mapping[str, Sequence[str]], key: str, clients: int) -> Verdict:
    """``picks``: for each key, the instances its requests reached (sent from ``clients`` client addresses)."""
    check = f"one {key}, one instance"
    split = {value: sorted(set(instances)) for value, instances in picks.items() if len(set(instances)) > 1}
    observed = {"keys": len(picks), "keys_on_several_instances": len(split)}
    if split:
        value, instances = next(iter(split.items()))
        summary = (
            f"{len(split)} of {len(picks)} keys reached several instances, e.g. {key}={value!r} "
            f"reached {', '.join(instances)} (expected one each)"
        )
    else:
        summary = (
            f"each of {len(picks)} keys reached one instance from {clients} client address(es) (expected one each)"
        )
    return Verdict(check, not split, summary, observed, {"keys_on_several_instances": 0})


def keys_spread(picks: Mapping[str, Sequence[str]], instances: int, key: str) -> Verdict:
    """Distinct keys reach more than one instance (a hash of a constant would pin them all).

    With K keys hashed over N instances, all K on one instance has probability N * (1/N)**K:
    about 2e-15 for the probe's 32 keys over 3 instances.
    """
    reached = sorted({picked for values in picks.values() for picked in values})
    minimum = min(2, instances)
    summary = f"{len(picks)} {key} values reached {len(reached)} of {instances} instances (expected at least {minimum})"
    return Verdict(
        f"distinct {key} values spread over instances",
        len(reached) >= minimum,
        summary,
        {"instances_reached": len(reached)},
        {"instances_reached_at_least": minimum},
    )


def only_removed_keys_move(before: Mapping[str, str], after: Mapping[str, str], removed: str, key: str) -> Verdict:
    """``hash KEY consistent``: after ``removed`` leaves, every key it did not hold stays where it was."""
    kept = [value for value, instance in before.items() if instance != removed and value in after]
    moved = [value for value in kept if after[value] != before[value]]
    held = sum(1 for instance in before.values() if instance == removed)
    summary = (
        f"after {removed} left, {len(moved)} of {len(kept)} keys it did not hold moved (expected 0); "
        f"the {held} keys it held moved to others"
    )
    if moved:
        summary += f"; e.g. {key}={moved[0]!r} moved from {before[moved[0]]} to {after[moved[0]]}"
    return Verdict(
        "consistent hashing moves only the removed instance's keys",
        not moved and bool(kept),
        summary,
        {"kept_keys": len(kept), "moved": len(moved), "held_by_removed": held},
        {"moved": 0},
    )


def in_flight_within_limits(
    peaks: Mapping[str, int], limits: Mapping[str, int], statuses: Sequence[int], sent: int, where: str
) -> Verdict:
    """``max_conns``: no instance ever held more requests at once than its limit.

    ``peaks`` are the most requests each instance held at once while ``sent`` long requests
    were open together; ``statuses`` what those requests got.
    """
    over = {name: peak for name, peak in peaks.items() if name in limits and peak > limits[name]}
    refused = [status for status in statuses if status != 200]
    shown = ", ".join(f"{name} {peaks.get(name, 0)}/{limit}" for name, limit in limits.items())
    summary = f"most in flight at once (of max_conns in {where}): {shown}, with {sent} long requests open together"
    if refused:
        summary += f"; {len(refused)} beyond capacity got {', '.join(map(str, sorted(set(refused))))}"
    return Verdict(
        "max_conns: no instance holds more requests than its limit",
        not over,
        summary,
        {"peaks": dict(peaks), "statuses": sorted(statuses)},
        {"limits": dict(limits)},
    )


def connections_reused(
    served: Mapping[str, int], connections: Mapping[str, int], keepalive: int, where: str
) -> Verdict:
    """``keepalive N``: requests reach the instances over kept connections, not one connection each.

    nginx reuses an upstream connection only with ``proxy_http_version 1.1`` and no
    ``Connection: close`` passed on; without them every request opens its own. The check asks
    for at most half as many connections as requests (reuse gives far fewer; none gives as many).
    """
    requests, opened = sum(served.values()), sum(connections.values())
    summary = (
        f"{requests} requests reached the instances over {opened} connections with keepalive {keepalive} "
        f"in {where} (expected at most {requests // 2})"
    )
    if opened > requests // 2:
        summary += '; nginx reuses them only with proxy_http_version 1.1 and proxy_set_header Connection ""'
    return Verdict(
        "upstream keepalive reuses connections",
        requests > 0 and opened <= requests // 2,
        summary,
        {"requests": requests, "connections": opened},
        {"connections_at_most": requests // 2},
    )


def backup_takes_over(answers: Sequence[tuple[int, str]], backups: Sequence[str]) -> Verdict:
    """With every primary down, each request is answered, by a backup instance."""
    wrong = [(status, instance) for status, instance in answers if status != 200 or instance not in backups]
    summary = f"with every primary killed, {len(answers) - len(wrong)} of {len(answers)} requests answered by backup"
    if wrong:
        others = ", ".join(f"{status} from {instance or 'nginx'}" for status, instance in wrong[:3])
        summary += f"; the others got {others}"
    return Verdict(
        "backup takes over when every primary is down",
        bool(answers) and not wrong,
        summary + f" (expected all, from {', '.join(backups)})",
        {"answered_by_backup": len(answers) - len(wrong), "requests": len(answers)},
        {"answered_by_backup": len(answers)},
    )


def primaries_take_back(seconds: float | None, limit: float, where: str) -> Verdict:
    """After the primaries are back, requests return to them within their fail_timeout (plus a second)."""
    shown = "never" if seconds is None else f"after {seconds:.1f} s"
    return Verdict(
        "primaries take back from backup after they recover",
        seconds is not None and seconds <= limit,
        f"requests returned to a primary {shown} of its restart (expected within {limit:g} s, the time {where} "
        "keeps a failed server out, plus 2 s)",
        {"seconds": seconds},
        {"seconds_at_most": limit},
    )
