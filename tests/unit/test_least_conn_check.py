"""The least_conn verdict from a probe's responses."""

from harness.checks.least_conn import avoids_busy_instance
from harness.load.probes import LeastConnProbe, ProbeResponse


def probe(short_instances: list[str]) -> LeastConnProbe:
    long = ProbeResponse("b1", 200, started=0.0, finished=10.0)
    shorts = [
        ProbeResponse(name, 200, started=1.0 + i * 0.1, finished=1.05 + i * 0.1)
        for i, name in enumerate(short_instances)
    ]
    return LeastConnProbe(busy_instance="b1", long_response=long, short_responses=shorts)


def test_shorts_on_other_instances_pass() -> None:
    verdict = avoids_busy_instance(probe(["b2", "b3", "b2", "b3"]))
    assert verdict.passed, verdict.summary


def test_shorts_on_the_busy_instance_fail_with_the_count() -> None:
    verdict = avoids_busy_instance(probe(["b2", "b1", "b3", "b1"]))
    assert verdict.passed is False
    assert verdict.observed["sent_to_busy_instance"] == 2
    assert "2 of 4" in verdict.summary


def test_shorts_after_the_long_request_ended_do_not_count() -> None:
    result = probe(["b2"])
    result.short_responses.append(ProbeResponse("b1", 200, started=11.0, finished=11.1))
    assert avoids_busy_instance(result).observed["short_requests_while_busy"] == 1


def test_sessions_within_one_of_even() -> None:
    from harness.checks.sessions import sessions_within_one

    assert sessions_within_one({"a": 3, "b": 2, "c": 2}).passed
    uneven = sessions_within_one({"a": 5, "b": 1, "c": 1})
    assert uneven.passed is False and "most minus fewest 4" in uneven.summary
