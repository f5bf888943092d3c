"""fortio-style per-request knobs."""

import random

import pytest

from harness.backends.behaviour import KnobError, parse_duration_ms, pick_delay_ms, pick_status


def test_durations() -> None:
    assert parse_duration_ms("250ms") == 250
    assert parse_duration_ms("1.5s") == 1500
    assert parse_duration_ms("40") == 40


def test_status_without_percentage_applies_always() -> None:
    assert pick_status("503", random.Random(1)) == 503


def test_status_percentage_is_honoured() -> None:
    rng = random.Random(7)
    picks = [pick_status("503:20", rng) for _ in range(5000)]
    share = picks.count(503) / len(picks)
    # Binomial(5000, 0.2): standard deviation 0.0057; 0.17-0.23 is over five of them.
    assert 0.17 < share < 0.23, share


def test_delay_choices() -> None:
    rng = random.Random(3)
    assert {pick_delay_ms("10ms:50,30ms:50", rng) for _ in range(200)} == {10.0, 30.0}


@pytest.mark.parametrize("knob", ["abc", "503:150", "700", "10ms:60,10ms:60"])
def test_bad_knobs_are_refused(knob: str) -> None:
    with pytest.raises(KnobError):
        if knob.startswith("10ms"):
            pick_delay_ms(knob, random.Random(1))
        else:
            pick_status(knob, random.Random(1))
