"""Ctrl-C and SIGTERM unwind the main flow, so every context manager stops what it started.

Under gevent a plain Python signal handler raises in whichever greenlet happens to run,
often a Locust user, which then dies noisily while the run goes on. Handling the signal
in the hub and throwing KeyboardInterrupt into the main greenlet stops the run itself.
"""

from __future__ import annotations

import signal

import gevent
import greenlet


def interrupt_main_on_signals() -> None:
    main = greenlet.getcurrent()
    interrupted = False

    def interrupt() -> None:
        # Once: a second Ctrl-C while the run stops everything must not cut that short.
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            main.throw(KeyboardInterrupt)

    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, interrupt)
