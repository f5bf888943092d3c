"""A config's other listens: a server that only redirects answers with its redirect."""

from __future__ import annotations

import urllib.parse

from harness.checks.verdict import Verdict


def answers_redirect(
    listen: str, host: str, got_status: int, got_location: str, status: int, location: str, where: str
) -> Verdict:
    """``listen 80`` with ``return 301 https://$host$request_uri`` answers 301 to that URL.

    ``location`` is the redirect's target with the variables the harness knows filled in;
    a variable it cannot know leaves the part before it to compare.
    """
    known, _, _ = location.partition("$")
    if location.startswith("/"):
        # A relative target: nginx answers with an absolute URL (absolute_redirect, port_in_redirect).
        parts = urllib.parse.urlsplit(got_location)
        got_location = parts.path + (f"?{parts.query}" if parts.query else "") if parts.netloc else got_location
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
