"""Hostile strings cannot add a directive to a generated config.

What a user passes that the harness writes into a balancer's config (the results
directory, weights, the words of a HAProxy config that are re-quoted on the way through)
is quoted or refused: rendering a config with hostile values and parsing the result back
gives exactly the directives of the same config with harmless values, holding the hostile
value intact.
"""

import tempfile
from pathlib import Path
from typing import Any

import crossplane
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.algorithms import ALGORITHMS, shipped_config
from harness.balancers.client.config import load_config as load_client_config
from harness.balancers.haproxy import config as haproxy
from harness.balancers.haproxy import render as haproxy_render
from harness.balancers.haproxy.parse import SECTIONS as HAPROXY_SECTIONS
from harness.balancers.nginx import config as nginx
from harness.balancers.nginx import render as nginx_render
from harness.errors import ConfigError, SpecError
from harness.runtimes.base import Instance
from harness.spec import BenchSpec

INSTANCES = [Instance(f"api-gateway-{i}", "api-gateway", f"127.0.1.{i}", 8000 + i, 9000 + i, i) for i in (1, 2, 3)]
# Anything a file name may hold: no NUL, no slash; nginx's and HAProxy's syntax characters included.
hostile_name = st.text(alphabet=st.characters(blacklist_characters="\0/", blacklist_categories=("Cs",)), min_size=1)
# One line of a config file: anything but NUL and line breaks.
hostile_word = st.text(alphabet=st.characters(blacklist_characters="\0\n\r", blacklist_categories=("Cs",)), min_size=1)
# Words HAProxy or the harness's renderer treat specially, which random text almost never spells:
# 60,000 examples of hostile_word never hit `httplog`, which the renderer took for a log option.
haproxy_keyword = st.sampled_from(
    sorted({*HAPROXY_SECTIONS, "option", "no", "httplog", "tcplog", "dontlognull", "log", "log-format", "server"})
)


def shape(tree: list[dict[str, Any]]) -> list[Any]:
    """The directive names and nesting of a parsed nginx config, without their arguments."""
    return [(d["directive"], shape(d.get("block", []))) for d in tree]


def parse_nginx(text: str, directory: Path) -> list[dict[str, Any]]:
    path = directory / "rendered.conf"
    path.write_text(text)
    payload = crossplane.parse(str(path), single=True, check_ctx=False, check_args=False)
    assert payload["status"] == "ok", payload["errors"]
    return payload["config"][0]["parsed"]  # type: ignore[no-any-return]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hostile_name, weight=st.integers(min_value=1, max_value=1000))
@example(name="a\tb", weight=1)  # a control character: refused
@example(name='x"; } access_log /tmp/stolen; #', weight=1000)  # quote, end of directive and block, comment
@example(name="ends with a backslash\\", weight=2)
@example(name="it's", weight=3)  # a single quote: quoted with double quotes
def test_a_hostile_results_directory_stays_one_quoted_path_in_nginx_conf(name: str, weight: int) -> None:
    if not name.isprintable():  # control characters: refused before anything is written
        with pytest.raises(SpecError, match="control characters"):
            BenchSpec(algorithms=("round_robin",), results_dir=Path("/tmp") / name).validate()
        return
    config = nginx.load_config(shipped_config(ALGORITHMS["health_checks"]))
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        benign = nginx_render.RenderSettings(directory / "run", "127.0.0.1:18080", 1, weights={"api-gateway-1": 2})
        hostile = nginx_render.RenderSettings(directory / name, "127.0.0.1:18080", 1, weights={"api-gateway-1": weight})
        expected = parse_nginx(nginx_render.render(config, INSTANCES, benign), directory)
        got = parse_nginx(nginx_render.render(config, INSTANCES, hostile), directory)
    assert shape(got) == shape(expected)
    http = next(d for d in got if d["directive"] == "http")
    (access_log,) = [d for d in http["block"] if d["directive"] == "access_log"]
    assert access_log["args"][0] == str(directory / name / "access.log")


@given(word=st.one_of(haproxy_keyword, hostile_word))
@example(word="ends with a backslash\\")
@example(word='" \n frontend stolen')
@example(word="# not a comment")
@example(word="httplog")  # the option is httpchk: dropped while owned options were matched by their last word
def test_a_hostile_word_in_a_haproxy_config_stays_one_word(word: str) -> None:
    base = shipped_config(ALGORITHMS["health_checks"], "haproxy").read_text()
    quoted = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        user = directory / "user.cfg"
        user.write_text(base.replace("option httpchk GET /api/health", f"option httpchk GET /api/health {quoted}"))
        try:
            config = haproxy.load_config(user)
        except ConfigError:
            return  # refused with a message: nothing rendered
        rendered = directory / "rendered.cfg"
        rendered.write_text(
            haproxy_render.render(config, INSTANCES, haproxy_render.RenderSettings(directory, "127.0.0.1:18080"))
        )
        again = haproxy.load_config(rendered)
    # The harness adds its own log and stats lines, a loopback resolver and one server line per instance;
    # nothing else changes.
    added = {"log", "log-format", "stats", "server", "nameserver"}
    lines = [(s.kind, s.name, line[0]) for s in again.sections for line in s.lines if line[0] not in added]
    before = [(s.kind, s.name, line[0]) for s in config.sections for line in s.lines if line[0] not in added]
    assert lines == before
    servers = [line for s in again.sections for line in s.lines if line[0] == "server"]
    assert [line[1] for line in servers] == ["api-gateway-1", "api-gateway-2", "api-gateway-3"]
    (check,) = [line for s in again.sections for line in s.lines if line[:2] == ["option", "httpchk"]]
    assert check[-1] == word


@given(service=hostile_word)
@example(service="api-gateway")  # a plain name is kept
@example(service="Api")  # upper case: refused
@example(service='a"b')  # a quote: the file holds no server
@example(service="a\\b")  # a backslash, written as an escape in TOML
def test_a_client_side_service_name_is_a_plain_name_or_refused(service: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "client.toml"
        path.write_text(f"[[servers]]\nservice = {service!r}\n".replace("'", '"') if '"' not in service else "")
        try:
            config = load_client_config(path)
        except ConfigError:
            return
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.") for name in config.services)
