"""How requests spread over instances: exact order and goodness of fit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from harness.checks.verdict import Verdict, not_applicable

# A correct config fails a statistical check less than once in a thousand runs.
FALSE_ALARM_RATE = 0.001


def shares_from_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Expected share of each instance from its weight (0 for instances that get none)."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must add up to more than zero")
    return {name: weight / total for name, weight in weights.items()}


def spread_matches(
    counts: Mapping[str, int],
    expected_shares: Mapping[str, float],
    check: str = "spread matches expected shares",
    alpha: float = FALSE_ALARM_RATE,
) -> Verdict:
    """Pearson's chi-square goodness of fit of ``counts`` to ``expected_shares``.

    The null hypothesis is that each request independently lands on instance i with
    probability share_i; it is rejected at p < ``alpha``, so a balancer that does what
    the shares say (or spreads more evenly, as round robin does) fails with probability
    at most ``alpha``. Instances outside ``expected_shares`` that received requests fail
    the check outright.
    """
    total = sum(counts.values())
    observed = {name: int(counts.get(name, 0)) for name in expected_shares}
    expected = {name: round(share * total, 1) for name, share in expected_shares.items()}
    strays = {name: count for name, count in counts.items() if name not in expected_shares and count}
    if total == 0:
        return Verdict(check, False, "no requests were recorded", observed, expected, alpha)
    if strays:
        return Verdict(
            check,
            False,
            f"requests reached instances that should get none: {strays}",
            {**observed, **strays},
            expected,
            alpha,
        )
    served = {name: share for name, share in expected_shares.items() if share > 0}
    zero_share_hits = {
        name: observed[name] for name in expected_shares if expected_shares[name] == 0 and observed[name]
    }
    if zero_share_hits:
        return Verdict(
            check,
            False,
            f"instances with expected share 0 served requests: {zero_share_hits}",
            observed,
            expected,
            alpha,
        )
    if len(served) == 1:
        return Verdict(check, True, f"all {total} requests on the only serving instance", observed, expected, alpha)
    from scipy.stats import chisquare  # scipy's statistics load in 0.7 s: only for a run that tests a spread

    result = chisquare([observed[name] for name in served], [served[name] * total for name in served])
    p_value = float(result.pvalue)
    passed = p_value >= alpha
    summary = f"chi-square {float(result.statistic):.2f} on {len(served) - 1} df, p = {p_value:.3g}"
    if passed:
        summary += f" (>= {alpha:g})"
    else:
        summary += f" (< {alpha:g}): observed {observed}, expected {expected}"
    return Verdict(check, passed, summary, {**observed, "p_value": p_value}, expected, alpha)


def exact_cycle(sequence: Sequence[str], period: Sequence[str], check: str = "exact order") -> Verdict:
    """``sequence`` is ``period`` repeated, starting anywhere in it.

    Earlier traffic (readiness requests) moves the balancer's starting point, so any
    rotation of the period is accepted; everything after the first pick must follow.
    """
    if not sequence:
        return Verdict(check, False, "no requests were recorded")
    expected_pattern = list(period)
    length = len(expected_pattern)
    # Names as codes, so that each offset's comparison is one array operation: a thousand
    # instances make a period of a thousand offsets over four thousand requests.
    codes = {name: code for code, name in enumerate(dict.fromkeys([*expected_pattern, *sequence]))}
    pattern_codes = np.array([codes[name] for name in expected_pattern])
    sequence_codes = np.array([codes[name] for name in sequence])
    positions = np.arange(len(sequence))
    mismatches_by_offset = [
        int((pattern_codes[(offset + positions) % length] != sequence_codes).sum()) for offset in range(length)
    ]
    best_offset = int(np.argmin(mismatches_by_offset))
    best_mismatches = mismatches_by_offset[best_offset]
    expected_sequence = [expected_pattern[(best_offset + i) % length] for i in range(len(sequence))]
    shown = 12
    observed = {"sequence": list(sequence[:shown]), "mismatches": best_mismatches, "requests": len(sequence)}
    expected = {"sequence": expected_sequence[:shown], "period": expected_pattern}
    if best_mismatches == 0:
        return Verdict(
            check,
            True,
            f"{len(sequence)} requests followed the period {_shown_period(expected_pattern)}",
            observed,
            expected,
        )
    first_bad = next(i for i, (a, b) in enumerate(zip(sequence, expected_sequence, strict=True)) if a != b)
    summary = (
        f"{best_mismatches} of {len(sequence)} requests out of order; first at request {first_bad + 1}: "
        f"got {sequence[first_bad]}, expected {expected_sequence[first_bad]}; "
        f"observed {' '.join(sequence[:shown])}; expected {' '.join(expected_sequence[:shown])}"
    )
    return Verdict(check, False, summary, observed, expected)


def counts_of(names: Sequence[str]) -> dict[str, int]:
    return dict(Counter(names))


EXACT_ORDER = "sequential requests follow the exact order"


def order_not_kept(workers: int) -> Verdict:
    """Several workers without a shared zone: each keeps its own rotation, so no one order holds."""
    return not_applicable(
        EXACT_ORDER,
        f"{workers} nginx workers without a shared zone each keep their own rotation; "
        "use --workers 1 or --zone for an exact order",
    )


def _shown_period(period: list[str], shown: int = 12) -> str:
    """The period in full, or its ends when it is longer than ``shown`` picks."""
    if len(period) <= shown:
        return " ".join(period)
    return f"of {len(period)} picks {' '.join(period[: shown - 2])} ... {' '.join(period[-2:])}"
