"""Where a population of clients lands under an algorithm keyed on the client's address (ip_hash,
``hash $remote_addr``): predicted by the algorithm's model before the load, then observed, client
by client. The seed's warnings, in numbers: ip_hash hashes a /24, so clients of one network, or
behind one NAT address, are one client to it, and the split can be as uneven as the networks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from harness.checks.verdict import Verdict

POPULATION_CHECK = "each client lands where the model predicts"


def population_as_predicted(
    model: str,
    population: str,
    predicted: Mapping[str, str],
    observed: Mapping[str, str],
    instances: Sequence[str],
) -> Verdict:
    """``predicted`` and ``observed``: the instance of each client address (an empty string where
    the model leaves a choice, or nothing answered)."""
    expected = Counter(predicted.values())
    seen = Counter(observed.values())
    shares = ", ".join(f"{name} {expected.get(name, 0):,}" for name in instances)
    busiest = max(expected.get(name, 0) for name in instances) if instances else 0
    even = len(predicted) / max(len(instances), 1)
    uneven = f"; the busiest instance gets {busiest / even:.2f}x an even share" if even else ""
    elsewhere = {client: where for client, where in observed.items() if predicted.get(client) not in ("", where)}
    head = f"{model} over {population}: predicted clients per instance {shares}{uneven}"
    numbers = {"clients": len(observed), "elsewhere": len(elsewhere), "per_instance": dict(seen)}
    wanted = {"elsewhere": 0, "per_instance": dict(expected)}
    if not elsewhere:
        return Verdict(POPULATION_CHECK, True, f"{head}; observed the same, client by client", numbers, wanted)
    client, where = next(iter(elsewhere.items()))
    summary = (
        f"{head}; {len(elsewhere):,} of {len(observed):,} clients elsewhere, e.g. {client} on "
        f"{where or 'no instance'} (predicted {predicted[client]})"
    )
    return Verdict(POPULATION_CHECK, False, summary, numbers, wanted)
