"""Which backend a HAProxy frontend sends a request to: its ACLs, ``use_backend`` rules and redirects.

The harness loads one backend of the user's config, so it needs a request (Host, path, TLS
or not) that the frontend sends there. It finds one by reading the rule that names the
backend (``use_backend api if { path_beg /api/ }``, ``acl site hdr(host) -i shop.example.com``)
and then checks it the way HAProxy evaluates a frontend (``http_process_req_common`` and
``process_switching_rules`` in HAProxy's ``src/http_ana.c`` and ``src/stream.c``): redirect
rules first, then every ``use_backend`` in order, the first whose condition holds wins,
else ``default_backend``.

Only the fetches a route is written with are understood (path, url, base and Host header
matches, ``ssl_fc``, the method, the predefined ACLs); a condition on anything else is
"unknown", and the rule that holds it is named when it decides the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.balancers.haproxy.parse import Section, origin_of
from harness.balancers.origin import Origin

# HAProxy's predefined ACLs, for a request the harness sends (GET over HTTP/1.1 from loopback).
_PREDEFINED = {
    "TRUE": True, "FALSE": False, "HTTP": True, "HTTP_1.1": True, "HTTP_1.0": False, "METH_GET": True,
    "METH_HEAD": False, "METH_POST": False, "METH_PUT": False, "METH_DELETE": False, "METH_OPTIONS": False,
    "METH_CONNECT": False, "METH_TRACE": False, "HTTP_URL_SLASH": True, "HTTP_URL_ABS": False,
    "HTTP_URL_STAR": False, "LOCALHOST": True, "HTTP_CONTENT": False, "REQ_CONTENT": False,
}  # fmt: skip
# Each fetch's default match method, as HAProxy's fetch keywords imply it.
_IMPLIED_MATCH = {
    "path": "str", "path_beg": "beg", "path_end": "end", "path_sub": "sub", "path_dir": "dir", "path_reg": "reg",
    "url": "str", "url_beg": "beg", "url_end": "end", "url_sub": "sub", "url_dir": "dir", "url_reg": "reg",
    "base": "str", "base_beg": "beg", "base_end": "end", "base_sub": "sub", "base_dir": "dir", "base_reg": "reg",
    "hdr": "str", "hdr_beg": "beg", "hdr_end": "end", "hdr_sub": "sub", "hdr_dom": "dom", "hdr_dir": "dir",
    "hdr_reg": "reg", "req.hdr": "str", "req.fhdr": "str", "method": "str", "ssl_fc_sni": "str",
    "req.ssl_sni": "str", "req_ssl_sni": "str",
}  # fmt: skip
_HOST_FETCH = re.compile(
    r"^(hdr|hdr_beg|hdr_end|hdr_sub|hdr_dom|hdr_dir|hdr_reg|req\.hdr|req\.fhdr)\((host)(,[^)]*)?\)$", re.I
)
_FLAGS_FROM_FILES = {"-f", "-M"}  # values from a file: not known here
_FLAGS_WITH_VALUE = {"-u"}  # a value that is not a pattern
# Match methods the harness evaluates; others (len, int, ip, bin) make the test unknown.
_KNOWN_MATCHES = {"str", "beg", "end", "sub", "dir", "dom", "reg", "found", "bool"}
# Converters that change nothing the harness compares (case aside).
_NEUTRAL_CONVERTERS = {"", "lower"}


@dataclass(frozen=True)
class Request:
    """What the harness would send: a Host (None: the balancer's address), a path, over TLS or not."""

    host: str | None
    path: str
    tls: bool = False


@dataclass(frozen=True)
class Test:
    """One ACL test: a fetch, its match method and values (``path_beg /api/ /v1/``)."""

    fetch: str  # path, url, base, host, sni, method, ssl_fc, ...; "" for a fetch the harness does not know
    match: str  # str, beg, end, sub, dir, dom, reg, bool, found
    values: tuple[str, ...]
    ignore_case: bool
    written: str

    def holds(self, request: Request) -> bool | None:
        sample = self._sample(request)
        if self.fetch == "" or sample is _UNKNOWN:
            return None
        if self.match == "bool":
            return bool(sample)
        if sample is None:
            return False
        if self.match == "found":
            return True
        return any(_matches(self.match, str(sample), value, self.ignore_case) for value in self.values)

    def _sample(self, request: Request) -> object:
        if self.fetch == "ssl_fc":
            return request.tls
        if self.fetch in {"path", "url"}:
            return request.path
        if self.fetch == "base":
            return (request.host or "") + request.path
        if self.fetch == "host":
            return request.host
        if self.fetch == "sni":
            # The load connects to an address and sends no server name: what a rule on it decides
            # is unknown here (its names still go on the frontend's certificate).
            return _UNKNOWN
        if self.fetch == "method":
            return "GET"
        return _UNKNOWN


_UNKNOWN = object()


def _matches(match: str, sample: str, value: str, ignore_case: bool) -> bool:
    if ignore_case and match != "reg":
        sample, value = sample.lower(), value.lower()
    if match == "str":
        return sample == value
    if match == "beg":
        return sample.startswith(value)
    if match == "end":
        return sample.endswith(value)
    if match == "sub":
        return value in sample
    if match == "dir":  # the value as whole slash-delimited parts of the sample
        return f"/{value.strip('/')}/" in f"/{sample.strip('/')}/"
    if match == "dom":  # the value as whole dot-delimited parts of the sample
        return f".{value.strip('.')}." in f".{sample}."
    if match == "reg":
        return re.search(value, sample, re.I if ignore_case else 0) is not None
    return False


def parse_test(words: Sequence[str]) -> Test:
    """``criterion [flags] values`` of an ``acl`` line or an anonymous ``{ ... }`` ACL."""
    written = " ".join(words)
    criterion, rest = words[0], list(words[1:])
    ignore_case = False
    match: str | None = None
    values: list[str] = []
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "--":
            values += rest[index + 1 :]
            break
        if word == "-i":
            ignore_case = True
        elif word == "-m" and index + 1 < len(rest):
            match = rest[index + 1]
            index += 1
        elif word in _FLAGS_FROM_FILES:
            return Test("", "", (), False, written)
        elif word in _FLAGS_WITH_VALUE:
            index += 1
        elif word.startswith("-") and not values:
            pass  # -n: no effect on what matches
        else:
            values.append(word)
        index += 1
    # Converters (``,lower``) follow the fetch; lowering the sample is matching without case here.
    converters = re.sub(r"^[^(,]*(\([^)]*\))?", "", criterion)
    if {name.split("(")[0] for name in converters.split(",")} - _NEUTRAL_CONVERTERS:
        return Test("", "", (), False, written)  # a map, a hash, a substring: not known here
    ignore_case = ignore_case or ",lower" in converters
    fetch, implied = _fetch(criterion[: len(criterion) - len(converters)])
    if fetch == "ssl_fc":
        return Test(fetch, "bool", (), False, written)
    chosen = match or implied
    if chosen is None or chosen not in _KNOWN_MATCHES or (not values and chosen != "found"):
        return Test("", "", (), False, written)
    return Test(fetch, chosen, tuple(values), ignore_case, written)


def _fetch(criterion: str) -> tuple[str, str | None]:
    """(the sample a criterion reads, its implied match method)."""
    host = _HOST_FETCH.match(criterion)
    if host:
        return "host", _IMPLIED_MATCH[host.group(1).lower()]
    name = criterion
    if name in {"ssl_fc", "ssl_fc()"}:
        return "ssl_fc", "bool"
    if name in {"ssl_fc_sni", "req.ssl_sni", "req_ssl_sni"}:
        return "sni", "str"
    base = name.split("_")[0] if name.startswith(("path", "url", "base")) else name
    if base in {"path", "url", "base", "method"} and name in _IMPLIED_MATCH:
        return base, _IMPLIED_MATCH[name]
    if name in {"path", "url", "base", "method", "capture.req.uri", "pathq"}:
        return ("path" if name in {"capture.req.uri", "pathq"} else name), "str"
    return "", None


@dataclass(frozen=True)
class Condition:
    """``if``/``unless`` and its terms: alternatives (``||``) of terms that must all hold."""

    negate: bool  # unless
    alternatives: tuple[tuple[tuple[bool, str | Test], ...], ...]  # (negated, ACL name or anonymous test)
    written: str

    def holds(self, request: Request, acls: dict[str, list[Test]]) -> bool | None:
        result: bool | None = False
        for terms in self.alternatives:
            outcome: bool | None = True
            for negated, term in terms:
                value = _term(term, request, acls)
                if value is not None and negated:
                    value = not value
                if value is False:
                    outcome = False
                    break
                if value is None:
                    outcome = None
            if outcome is True:
                result = True
                break
            if outcome is None:
                result = None
        if result is None:
            return None
        return not result if self.negate else result


def _term(term: str | Test, request: Request, acls: dict[str, list[Test]]) -> bool | None:
    if isinstance(term, Test):
        return term.holds(request)
    if term in acls:
        # An ACL declared on several lines matches when any of them does.
        outcomes = [test.holds(request) for test in acls[term]]
        return True if True in outcomes else None if None in outcomes else False
    return _PREDEFINED.get(term)


def parse_condition(words: Sequence[str]) -> Condition | None:
    """The condition at the end of a rule (``if ...`` / ``unless ...``); None when there is none."""
    for index, word in enumerate(words):
        if word in {"if", "unless"}:
            return _condition(word == "unless", list(words[index + 1 :]))
    return None


def _condition(negate: bool, words: list[str]) -> Condition:
    alternatives: list[tuple[tuple[bool, str | Test], ...]] = []
    terms: list[tuple[bool, str | Test]] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word.lower() in {"||", "or"}:
            alternatives.append(tuple(terms))
            terms = []
        else:
            bangs = len(word) - len(word.lstrip("!"))
            negated = bangs % 2 == 1
            word = word[bangs:]
            if not word and index + 1 < len(words):  # `! name`
                index += 1
                word = words[index]
            if word == "{":
                end = words.index("}", index) if "}" in words[index:] else len(words)
                terms.append((negated, parse_test(words[index + 1 : end])))
                index = end
            else:
                terms.append((negated, word))
        index += 1
    alternatives.append(tuple(terms))
    return Condition(negate, tuple(alternatives), " ".join(words))


# `http-request` actions that answer the request themselves: it reaches no backend.
_STOPPING_ACTIONS = {"deny", "return", "auth", "tarpit", "silent-drop", "reject"}
# HAProxy's order (http_process_req_common): every `http-request` rule (phase 0), then the old
# `redirect` rules (1), then the backend switching rules (2).


@dataclass
class Rule:
    """A rule of a frontend that decides where a request goes: a redirect, a stop or a ``use_backend``."""

    kind: str  # "redirect", "stop" (deny, return, auth...) or "use_backend"
    target: str  # the backend's name, or the rule's words
    condition: Condition | None
    origin: Origin | None
    phase: int = 2

    @property
    def dynamic(self) -> bool:
        """A backend named by a sample (``use_backend %[req.hdr(host),map(...)]``): not known here."""
        return "%[" in self.target

    def holds(self, request: Request, acls: dict[str, list[Test]]) -> bool | None:
        return True if self.condition is None else self.condition.holds(request, acls)


@dataclass
class Switching:
    """One frontend's routing: its ACLs, redirects and backend rules in the order HAProxy applies them."""

    acls: dict[str, list[Test]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    default_backend: str | None = None
    default_origin: Origin | None = None

    def decide(self, request: Request) -> tuple[Rule | None, str | None, list[Rule]]:
        """(the rule that decided, its backend or None for a redirect or none, rules whose outcome was unknown)."""
        unknown: list[Rule] = []
        for rule in sorted(self.rules, key=lambda r: r.phase):
            outcome = rule.holds(request, self.acls)
            if outcome is None or (outcome and rule.dynamic):
                unknown.append(rule)  # HAProxy falls through a dynamic name it has no backend for
            elif outcome:
                return rule, (rule.target if rule.kind == "use_backend" else None), unknown
        return None, self.default_backend, unknown

    def hints(self, backend: str) -> list[Request]:
        """Requests the rules naming ``backend`` suggest, from their positive host and path tests."""
        found: list[Request] = []
        for rule in self.rules:
            if rule.kind != "use_backend" or rule.target != backend or rule.condition is None:
                continue
            if rule.condition.negate:
                continue
            for terms in rule.condition.alternatives:
                found.append(_suggest([test for negated, term in terms if not negated for test in self._tests(term)]))
        return found

    def host_names(self) -> list[str]:
        """Every host name the frontend's tests look for, for the certificate of its TLS binds."""
        tests = [test for tests in self.acls.values() for test in tests]
        for rule in self.rules:
            for terms in rule.condition.alternatives if rule.condition else ():
                tests += [term for _, term in terms if isinstance(term, Test)]
        names = [
            v.split(":")[0].strip(".")
            for t in tests
            if t.fetch in {"host", "sni"} and t.match != "reg"
            for v in t.values
        ]
        return list(dict.fromkeys(name for name in names if name))

    def _tests(self, term: str | Test) -> list[Test]:
        return [term] if isinstance(term, Test) else self.acls.get(term, [])[:1]


def _suggest(tests: Sequence[Test]) -> Request:
    host: str | None = None
    path = "/"
    tls = False
    for test in tests:
        value = test.values[0] if test.values else ""
        if test.fetch in {"host", "sni"} and test.match in {"str", "beg", "dom"}:
            host = value.split(":")[0]
        elif test.fetch == "host" and test.match == "end":
            host = "www" + value if value.startswith(".") else value
        elif test.fetch in {"path", "url"} and test.match in {"beg", "dir", "str"}:
            path = value if test.match != "dir" else "/" + value.strip("/") + "/"
        elif test.fetch in {"path", "url"} and test.match == "reg":
            literal = re.match(r"\^(/[A-Za-z0-9_\-./]*)", value)
            path = literal.group(1) if literal else path
        elif test.fetch == "base" and test.match in {"beg", "str"}:
            host_part, slash, rest = value.partition("/")
            host, path = host_part or host, slash + rest if slash else path
        elif test.fetch == "ssl_fc":
            tls = True
        if test.fetch == "sni":
            tls = True
    return Request(host, path, tls)


def switching_of(section: Section, defaults: Section | None = None) -> Switching:
    """The routing rules of a ``frontend`` or ``listen`` section, as written; a ``default_backend``
    of the ``defaults`` section in effect applies when the section names none."""
    switching = Switching()
    inherited = defaults.first("default_backend") if defaults is not None else None
    if inherited is not None and len(inherited) > 1:
        switching.default_backend, switching.default_origin = inherited[1], origin_of(inherited)
    for line in section.lines:
        keyword = line[0]
        if keyword == "acl" and len(line) > 2:
            switching.acls.setdefault(line[1], []).append(parse_test(line[2:]))
        elif keyword == "use_backend" and len(line) > 1:
            switching.rules.append(Rule("use_backend", line[1], parse_condition(line[2:]), origin_of(line)))
        elif keyword == "default_backend" and len(line) > 1:
            switching.default_backend, switching.default_origin = line[1], origin_of(line)
        elif keyword == "redirect":
            switching.rules.append(Rule("redirect", " ".join(line), parse_condition(line), origin_of(line), 1))
        elif keyword == "http-request" and len(line) > 1 and line[1] in {"redirect", *_STOPPING_ACTIONS}:
            kind = "redirect" if line[1] == "redirect" else "stop"
            switching.rules.append(Rule(kind, " ".join(line), parse_condition(line), origin_of(line), 0))
    if section.kind == "listen" and section.first("server") is not None:
        switching.default_backend = switching.default_backend or section.name
        switching.default_origin = switching.default_origin or section.origin
    return switching
