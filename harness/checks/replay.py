"""A run's picks replayed through a reference model of the balancer's algorithm (``harness.models``):
for each request, the peer the model predicts and the one the balancer took, and one verdict.

The balancer's log gives each pick's time in milliseconds, and the order of picks within one
millisecond is not in it. Order-dependent algorithms are therefore judged millisecond by
millisecond: within one, the picks must be the predicted ones in some order; across them, in
order. Connection counts at a pick come from the attempts' start and end times, known to a
millisecond, so least_conn and ``random two`` are judged by the peers allowed under the bounds
those times give. Hash algorithms need no order: each request's key decides its peer.

``picks`` frames have one row per pick: ``ms`` (int, when it was made), ``end_ms``, ``scope``
(the worker whose state made it, or one scope when workers share a zone), ``key`` (the
client address or the hash key), ``address`` (the peer taken). Where the log leaves the pick's
moment open (a request's time not spent on its peer may lie before the pick or after the
answer), ``latest_ms`` and ``latest_end_ms`` bound it from above, ``ms`` and ``end_ms`` from below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.backends.instance import Instance
from harness.checks.verdict import Verdict
from harness.models.peers import ModelPeer, Prediction

REPLAY_CHECK = "replay: every pick as the config's algorithm predicts"
CONTEXT_PICKS = 5  # requests shown around the first disagreement
TIME_TOLERANCE_MS = 1  # a logged end may be a millisecond off the moment the peer's count fell


@dataclass(frozen=True)
class Replay:
    """Predicted and observed, request by request, and how many agree."""

    model: str
    how: str  # "in the order nginx took them", "by key", "among the allowed peers"
    picks: pd.DataFrame  # the picks, with ``predicted`` (str) and ``agrees`` (bool) added
    first_disagreement: int | None = None  # row of ``picks``
    state: Mapping[str, object] | None = None  # what the model assumed there

    @property
    def agreed(self) -> int:
        return int(self.picks["agrees"].sum())

    def strips(self, names: Mapping[str, str]) -> pd.DataFrame:
        """Per second from the first pick and per instance (``names``: address -> instance): picks
        observed, picks predicted (where the model names one peer) and disagreements."""
        if self.picks.empty:
            return pd.DataFrame(columns=["second", "instance", "observed", "predicted", "disagreements"])
        second = (self.picks["ms"] - self.picks["ms"].min()) // 1000
        observed = pd.DataFrame({"second": second, "instance": self.picks["address"].map(names).fillna("?")})
        observed["disagreements"] = ~self.picks["agrees"].to_numpy(dtype=bool)
        counts = observed.groupby(["second", "instance"]).agg(
            observed=("disagreements", "size"), disagreements=("disagreements", "sum")
        )
        exact = self.picks["predicted"].isin(list(names))
        predicted = pd.DataFrame({"second": second[exact], "instance": self.picks.loc[exact, "predicted"].map(names)})
        counts["predicted"] = predicted.groupby(["second", "instance"]).size()
        counts["predicted"] = counts["predicted"].fillna(0).astype(int) if exact.any() else pd.NA
        return counts.reset_index()[["second", "instance", "observed", "predicted", "disagreements"]]

    def verdict(self, left_out: str = "") -> Verdict:
        total = len(self.picks)
        check = REPLAY_CHECK
        observed: dict[str, object] = {"picks": total, "as_predicted": self.agreed}
        if total == 0:
            return Verdict(check, None, "no picks in the balancer's log to replay" + left_out)
        summary = f"{self.agreed:,} of {total:,} picks as {self.model} predicts ({self.how}){left_out}"
        if self.first_disagreement is None:
            return Verdict(check, True, summary, observed, {"as_predicted": total})
        row = self.picks.iloc[self.first_disagreement]
        ms = int(self.picks["ms"].to_numpy()[self.first_disagreement])
        window = self.picks.iloc[
            max(0, self.first_disagreement - CONTEXT_PICKS) : self.first_disagreement + CONTEXT_PICKS + 1
        ]
        observed["first_disagreement"] = {
            "ms": ms, "key": row["key"], "predicted": row["predicted"], "observed": row["address"],
            "around": window[["ms", "scope", "key", "predicted", "address"]].to_dict("records"),
            "model_state": dict(self.state or {}),
        }  # fmt: skip
        first = (
            f"; first at request {self.first_disagreement + 1:,} (ms {ms}, key {row['key']}): "
            f"predicted {row['predicted']}, nginx took {row['address']}"
        )
        return Verdict(check, False, summary + first, observed, {"as_predicted": total})


def agreement(verdicts: Sequence[Verdict]) -> str:
    """The replay's figure for a table: "100.00% of 14,520 picks", or why there is none."""
    replay = next((verdict for verdict in verdicts if verdict.check == REPLAY_CHECK), None)
    if replay is None or not replay.observed.get("picks"):
        return "-"
    picks, agreed = int(replay.observed["picks"]), int(replay.observed["as_predicted"])
    return f"{agreed / picks:.2%} of {picks:,}"


def combined(replays: Sequence[Replay]) -> Replay:
    """Replays of one run's parts (one per config the balancer ran) as one, in time order."""
    if len(replays) == 1:
        return replays[0]
    picks = pd.concat([replay.picks for replay in replays], ignore_index=True)
    order = np.argsort(picks["ms"].to_numpy(), kind="stable")
    picks = picks.iloc[order].reset_index(drop=True)
    first = _first_false(picks["agrees"]) if "agrees" in picks else None
    failing = next((replay for replay in replays if replay.first_disagreement is not None), replays[0])
    models = list(dict.fromkeys(replay.model for replay in replays))
    return Replay(" then ".join(models), failing.how, picks, first, failing.state)


def replay_by_key(picks: pd.DataFrame, model: str, predict: Callable[[str], Prediction]) -> Replay:
    """Each pick against the prediction for its key; one model call per distinct key."""
    codes, keys = pd.factorize(picks["key"])
    predictions = [predict(key) for key in keys]
    predicted = np.array([str(prediction) for prediction in predictions], dtype=object)[codes]
    agrees = predicted == picks["address"].to_numpy(dtype=object)
    # Where the model leaves a choice (round robin's fallback), membership decides.
    for code in np.flatnonzero([prediction.exact is None for prediction in predictions]):
        rows = np.flatnonzero(codes == code)
        agrees[rows] = [predictions[code].admits(address) for address in picks["address"].to_numpy()[rows]]
    picks = picks.assign(predicted=predicted, agrees=agrees.astype(bool))
    return Replay(model, "each request by its key", picks, _first_false(picks["agrees"]))


def replay_in_order(
    picks: pd.DataFrame,
    model: str,
    sequence: Callable[[int], list[str]],
    state_at: Callable[[int], Mapping[str, object]],
) -> Replay:
    """Each scope's picks against ``sequence(n)``, the model's first n picks, a millisecond at a time.

    Within one millisecond the picks agree as a multiset: every name as often as predicted there.
    """
    parts = []
    for _, scope in picks.sort_values(["scope", "ms"], kind="stable").groupby("scope", sort=False):
        scope = scope.sort_values("ms", kind="stable").copy()
        scope["predicted"] = sequence(len(scope))
        scope["position"] = np.arange(len(scope))
        observed = scope.groupby(["ms", "address"]).size()
        predicted = scope.groupby(["ms", "predicted"]).size()
        predicted.index = predicted.index.set_names(["ms", "address"])
        both = pd.concat([observed.rename("observed"), predicted.rename("predicted")], axis=1).fillna(0)
        both["agreed"] = both[["observed", "predicted"]].min(axis=1)
        # Within a millisecond, the first picks of each name agree, up to the predicted count.
        scope["rank"] = scope.groupby(["ms", "address"]).cumcount()
        limits = both["predicted"].reindex(pd.MultiIndex.from_arrays([scope["ms"], scope["address"]])).to_numpy()
        scope["agrees"] = scope["rank"].to_numpy() < limits
        parts.append(scope)
    if not parts:
        return Replay(model, "in the order nginx took them", picks.assign(predicted="", agrees=True))
    replayed = pd.concat(parts).sort_values(["ms", "scope"], kind="stable").reset_index(drop=True)
    first = _first_false(replayed["agrees"])
    state = None
    if first is not None:
        # The state the millisecond began from: its picks' order within it is not known.
        same = (replayed["scope"] == replayed.loc[first, "scope"]) & (replayed["ms"] == replayed.loc[first, "ms"])
        state = state_at(int(replayed.loc[same, "position"].min()))
    return Replay(
        model, "per worker, each millisecond's picks in any order", replayed.drop(columns=["position", "rank"]),
        first, state,
    )  # fmt: skip


def connection_bounds(
    picks: pd.DataFrame, names: Sequence[str], tolerance_ms: int = TIME_TOLERANCE_MS, start_tolerance_ms: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """For each pick and peer, the fewest and the most connections the peer can have had open in
    the pick's scope when it was made: (picks x peers) arrays of lows and highs.

    Sure to be open: begun, at the latest, before the pick's earliest millisecond (less
    ``start_tolerance_ms``, where the log's start times are themselves rounded) and ended, at the
    earliest, after its latest (plus ``tolerance_ms``). May be open: begun at the earliest no later
    and ended at the latest no earlier, with the same tolerances the other way.
    """
    low = np.zeros((len(picks), len(names)), dtype=np.int64)
    high = np.zeros_like(low)
    earliest = picks["ms"].to_numpy()
    latest = picks["latest_ms"].to_numpy() if "latest_ms" in picks else earliest
    earliest_end = picks["end_ms"].to_numpy()
    latest_end = picks["latest_end_ms"].to_numpy() if "latest_end_ms" in picks else earliest_end
    # Begun as late as it may have been, it is open only from then: an attempt whose doubt about
    # its start outlasts its time on the peer is never surely open.
    surely_open_from, surely_open_to = latest, np.maximum(earliest_end, latest)
    scopes = picks["scope"].to_numpy()
    addresses = picks["address"].to_numpy()
    for scope in pd.unique(scopes):
        rows = np.flatnonzero(scopes == scope)
        ms = earliest[rows]
        surely_before, surely_after = ms - start_tolerance_ms, latest[rows] + tolerance_ms
        for column, name in enumerate(names):
            mine = rows[addresses[rows] == name]
            # Begun surely before and ended by then: every attempt ended by then, less those
            # lying wholly inside the window of doubt around the pick (counted inside the
            # narrowest window, so that the fewest are never overstated).
            begun_before = np.searchsorted(np.sort(surely_open_from[mine]), surely_before, side="left")
            ended_by = np.searchsorted(np.sort(surely_open_to[mine]), surely_after, side="right")
            inside = _wholly_inside(
                surely_open_from[mine], surely_open_to[mine], surely_before, tolerance_ms + start_tolerance_ms
            )
            low[rows, column] = np.maximum(begun_before - (ended_by - inside), 0)
            begun_by = np.searchsorted(np.sort(earliest[mine]), latest[rows] + start_tolerance_ms, side="right")
            ended_before = np.searchsorted(np.sort(latest_end[mine]), ms - tolerance_ms, side="left")
            high[rows, column] = begun_by - ended_before
    return low, high


def _wholly_inside(starts: np.ndarray, ends: np.ndarray, lower: np.ndarray, width: int) -> np.ndarray:
    """For each time in ``lower``, how many attempts began at it or later and ended by it plus ``width``."""
    span = width + 1
    short = (ends - starts) <= width
    codes = np.sort(starts[short] * span + (ends[short] - starts[short]))
    counts = np.zeros(len(lower), dtype=np.int64)
    for offset in range(span):
        for length in range(span - offset):
            code = (lower + offset) * span + length
            counts += np.searchsorted(codes, code, side="right") - np.searchsorted(codes, code, side="left")
    return counts


def replay_allowed(
    picks: pd.DataFrame,
    model: str,
    peers: Sequence[ModelPeer],
    allowed: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tolerance_ms: int = TIME_TOLERANCE_MS,
    how: str = "among the peers its connection counts allow",
    start_tolerance_ms: int = 0,
) -> Replay:
    """Each pick against ``allowed(low, high)``: for every pick (row) and peer (column), whether
    the model admits it under the pick's connection bounds."""
    names = [peer.name for peer in peers]
    low, high = connection_bounds(picks, names, tolerance_ms, start_tolerance_ms)
    admitted = allowed(low, high)
    column = pd.Series(range(len(names)), index=names)
    taken = column.reindex(picks["address"].to_numpy()).to_numpy()
    known = ~np.isnan(taken)
    agrees = np.zeros(len(picks), dtype=bool)
    rows = np.flatnonzero(known)
    agrees[rows] = admitted[rows, taken[known].astype(np.int64)]
    picks = picks.assign(agrees=agrees, predicted="")
    first = _first_false(picks["agrees"])
    state = None
    if first is not None:
        # The allowed sets are named only where a reader looks: around the first disagreement.
        shown = range(max(0, first - CONTEXT_PICKS), min(len(picks), first + CONTEXT_PICKS + 1))
        labels = picks["predicted"].to_numpy(dtype=object)
        for row in shown:
            labels[row] = str(Prediction.any_of({names[i] for i in np.flatnonzero(admitted[row])}))
        picks["predicted"] = labels
        state = {"connections_at_least": dict(zip(names, low[first].tolist(), strict=True)),
                 "connections_at_most": dict(zip(names, high[first].tolist(), strict=True))}  # fmt: skip
    return Replay(model, how, picks, first, state)


def _first_false(flags: pd.Series) -> int | None:
    misses = np.flatnonzero(~flags.to_numpy(dtype=bool))
    return int(misses[0]) if len(misses) else None


def generation_of_each_worker(picks: pd.DataFrame, started: Sequence[float]) -> pd.Series:
    """The config each pick was made under: a worker (pid) serves the config of the start or
    reload before its first pick, until it exits; an old worker only finishes what it began."""
    first_ms = picks.groupby("scope")["ms"].transform("min").to_numpy()
    starts_ms = np.array([round(at * 1000) for at in started], dtype=np.int64)
    return pd.Series(np.maximum(np.searchsorted(starts_ms, first_ms, side="right") - 1, 0), index=picks.index)


def generation_of_each_pick(picks: pd.DataFrame, started: Sequence[float], in_place: Sequence[float] = ()) -> pd.Series:
    """As :func:`generation_of_each_worker`, and a generation that took effect inside the running
    workers (``in_place``: when) holds for every pick from then on, whatever worker made it."""
    generation = generation_of_each_worker(picks, started).to_numpy()
    if in_place:
        starts_ms = np.array([round(at * 1000) for at in started], dtype=np.int64)
        effective = np.array([round(at * 1000) for at in in_place], dtype=np.int64)
        which = np.searchsorted(starts_ms, effective, side="right") - 1  # the generation each one applied
        applied = np.searchsorted(effective, picks["ms"].to_numpy(), side="right") - 1
        in_force = np.where(applied >= 0, which[np.maximum(applied, 0)], 0)
        generation = np.maximum(generation, in_force)
    return pd.Series(generation, index=picks.index)


def describe_change(before: Sequence[Instance], after: Sequence[Instance]) -> str:
    """What changed between two configs a balancer ran: the instances added and removed."""
    old, new = [i.name for i in before], [i.name for i in after]
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    parts = [f"{', '.join(added)} added" if added else "", f"{', '.join(removed)} removed" if removed else ""]
    return " and ".join(part for part in parts if part) or "reloaded with the same instances"
