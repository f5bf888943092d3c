"""A config's other listens: a server that only redirects answers with its redirect."""

from __future__ import annotations

from harness.checks.verdict import Verdict


def answers_redirect(
    listen: str, host: str, got_status: int, got_location: str, status: int, location: str, where: str
) -> Verdict:
    """``listen 80`` with ``return 301 https://$host$request_uri`` answers 301 to that URL.

    ``location`` is the redirect's target with the variables the harness knows filled in;
    a variable it cannot know leaves the part before it to compare.
    """
    known, _, _ = location.partition("$")
    matches = got_location == location if "$" not in location else got_location.startswith(known)
    scheme = location.partition("://")[0] if "://" in location else location
    check = f"listen {listen} answers {status} to {scheme}"
    summary = (
        f"GET with Host {host} on listen {listen} ({where}) got {got_status} to {got_location or 'no Location'} "
        f"(expected {status} to {location})"
    )
    return Verdict(
        check,
        got_status == status and matches,
        summary,
        {"status": got_status, "location": got_location},
        {"status": status, "location": location},
    )
