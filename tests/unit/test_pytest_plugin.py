"""The pytest plugin in projects of its own (pytester): quiet for unrelated tests, its marker and options."""

from __future__ import annotations

import pytest

from harness.checks.distribution import FALSE_ALARM_RATE
from harness.pytest_plugin import DEFAULT_FALSE_ALARM_RATE, MARKER_OPTIONS, missing_balancer

UNRELATED_TESTS = """
import socket
import ssl
import sys
import threading

def test_the_standard_library_is_not_patched():
    assert "locust" not in sys.modules, "the plugin imported locust"
    assert "gevent" not in sys.modules, "the plugin imported gevent"
    assert socket.socket.__module__ == "socket", socket.socket
    assert ssl.SSLContext.__module__ == "ssl", ssl.SSLContext
    assert threading.Lock.__module__ == "_thread", threading.Lock

def test_heavy_libraries_are_not_loaded():
    heavy = ("pandas", "scipy", "docker", "kubernetes", "harness.bench")
    loaded = sorted(name for name in heavy if name in sys.modules)
    assert loaded == [], loaded
"""


def test_an_unrelated_test_sees_an_unpatched_standard_library(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=UNRELATED_TESTS)
    # A fresh interpreter: this suite's own process has Locust loaded already.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_an_unrelated_test_beside_a_live_one_that_is_deselected_stays_unpatched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_unrelated=UNRELATED_TESTS,
        test_live="""
import pytest

@pytest.mark.lb(algo="round_robin")
def test_live():
    pass
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not lb")
    result.assert_outcomes(passed=2, deselected=1)


def test_the_plugin_is_loaded_by_its_entry_point_and_registers_the_marker_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(['@pytest.mark.lb(balancer="nginx", algo=None, config=None, scenario=None,*'])


def test_the_options_are_in_the_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--lb-duration=LB_DURATION*", "*--lb-missing=LB_MISSING*"])


def test_a_bad_lb_missing_value_is_one_usage_line_naming_where_it_came_from(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--lb-missing", "maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.ret
    result.stderr.fnmatch_lines(["*invalid lb_missing 'maybe' from --lb-missing, $HARNESS_LB_MISSING*"])


MARKED = """
import pytest

@pytest.mark.lb(algo="round_robin")
def test_live(lb_result):
    pass
"""


def test_a_machine_without_the_balancer_fails_the_test_with_the_install_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_NGINX", "/nonexistent/nginx")
    pytester.makepyfile(MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*nginx is not installed*apt-get install -y nginx-light*--lb-missing=skip*"])


def test_lb_missing_skip_skips_the_test_on_such_a_machine(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_NGINX", "/nonexistent/nginx")
    monkeypatch.setenv("HARNESS_LB_MISSING", "skip")
    pytester.makepyfile(MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*nginx is not installed*apt-get install -y nginx-light*"])


def test_an_unknown_marker_argument_names_the_known_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.lb(algorithm="round_robin")
def test_live():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0, result.ret
    result.stdout.fnmatch_lines([f"*unknown lb marker argument algorithm; known: {', '.join(MARKER_OPTIONS)}*"])


def test_lb_result_without_a_marker_says_what_it_needs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_result(lb_result): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0, result.ret
    result.stdout.fnmatch_lines(["*lb_result needs @pytest.mark.lb(...) with arguments*"])


def test_an_executable_override_counts_as_installed_and_client_side_needs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HARNESS_NGINX", "/bin/true")
    assert missing_balancer("nginx") is None
    assert missing_balancer("client") is None


def test_the_plugins_false_alarm_default_is_the_librarys() -> None:
    assert float(DEFAULT_FALSE_ALARM_RATE) == FALSE_ALARM_RATE, (DEFAULT_FALSE_ALARM_RATE, FALSE_ALARM_RATE)


def test_a_skip_mark_wins_over_the_bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # With no nginx the bench would error: a skipped test must not get that far.
    monkeypatch.setenv("HARNESS_NGINX", "/nonexistent/nginx")
    pytester.makepyfile(
        """
import pytest

@pytest.mark.skip(reason="not today")
@pytest.mark.lb(algo="round_robin")
def test_live(lb_result):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*not today*"])
