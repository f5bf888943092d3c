"""Which keys move when a hashing balancer's peers change (an instance added, removed or
killed): observed from the picks before and after the change, predicted by the model of each
config, and the remap fraction of both. Plain ``hash`` moves most keys; ``consistent`` about
1/(N+1) of them, exactly the ones its ring says."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from harness.checks.verdict import Verdict
from harness.models.peers import Prediction

REMAP_CHECK = "keys that move when the peers change are the ones the model predicts"


def keys_moved(
    before: pd.DataFrame,
    after: pd.DataFrame,
    predict_before: Callable[[str], Prediction],
    predict_after: Callable[[str], Prediction],
    model: str,
    change: str,
) -> Verdict:
    """``before`` and ``after``: picks (``key``, ``address``) under the old and the new config;
    each key's last peer before and first peer after are compared."""
    last = before.groupby("key")["address"].last()
    first = after.groupby("key")["address"].first()
    keys = last.index.intersection(first.index)
    observed = {key for key in keys if last[key] != first[key]}
    predicted = {key for key in keys if str(predict_before(key)) != str(predict_after(key))}
    total = len(keys)
    if total == 0:
        return Verdict(REMAP_CHECK, None, f"{change}: no key was sent both before and after it")
    fraction = len(observed) / total
    head = f"{model}, {change}: {len(observed):,} of {total:,} keys moved ({fraction:.1%})"
    numbers = {"keys": total, "moved": len(observed), "remap_fraction": round(fraction, 4)}
    expected = {"moved": len(predicted), "remap_fraction": round(len(predicted) / total, 4)}
    if observed == predicted:
        return Verdict(REMAP_CHECK, True, f"{head}, the {len(predicted):,} the model predicts", numbers, expected)
    surprise = sorted(observed ^ predicted)[0]
    summary = (
        f"{head}; the model predicts {len(predicted):,} ({len(predicted) / total:.1%}); e.g. key {surprise!r} "
        f"{'moved' if surprise in observed else 'stayed'} (predicted to {'move' if surprise in predicted else 'stay'})"
    )
    return Verdict(REMAP_CHECK, False, summary, numbers, expected)
