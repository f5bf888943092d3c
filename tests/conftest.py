"""Hypothesis profiles for the property tests (``tests/unit/test_no_injection.py``).

``ci``, the default, makes a run reproducible: the same examples in the same order on
every machine (derandomize), and no example database, so a failure one machine saved in
its ``.hypothesis`` folder cannot make that machine's run differ from CI's. The edge cases
found so far are pinned as ``@example``s on the tests, so they run under every profile.

``fuzz`` (``HYPOTHESIS_PROFILE=fuzz``, what ``make fuzz`` sets) looks for new edge cases:
fresh randomness every run and many more examples. A failure prints the example and a
``@reproduce_failure`` blob; add the example to the test once the bug is fixed.
"""

# First: this suite drives load in its own process, so Locust (gevent) must patch the standard
# library before anything imports ssl. The plugin itself patches nothing until a test uses it.
import locust  # noqa: F401, I001

import os

from hypothesis import settings

settings.register_profile(
    "ci",
    derandomize=True,
    # About the 100-150 examples a test ran before, so the suite takes as long as it did.
    max_examples=150,
    # Rendering and parsing a config takes tens of milliseconds and more on a loaded
    # machine: a deadline would fail a correct run for being slow.
    deadline=None,
    print_blob=True,
    database=None,
)
settings.register_profile("fuzz", derandomize=False, max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
