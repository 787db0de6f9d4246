"""The built-in action catalog as data (inputs, their kinds, outputs), mirroring
``src/domain/actions.rs``, and the ``uses`` parser; with the duration grammar and semantic
versions the validator needs (``src/domain/duration.rs``, the ``semver`` crate's rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from .document import JSONValue

# --- durations --------------------------------------------------------------------------

DURATION_PATTERN = "^([0-9]{1,9}(ms|s|m|h))+$"
_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}


def rust_debug(s: str) -> str:
    """A string quoted the way Rust's ``{:?}`` prints it (for messages)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_duration(text: str) -> int:
    """Milliseconds of a duration string (``250ms``, ``1m30s``); raises ValueError."""
    if not text:
        raise ValueError("empty duration")
    if len(text.encode("utf-8")) > 64:
        raise ValueError("duration is too long")
    i = 0
    total = 0
    n_chars = len(text)
    while i < n_chars:
        start = i
        while i < n_chars and "0" <= text[i] <= "9":
            i += 1
        if i == start:
            pos = len(text[:start].encode("utf-8")) + 1
            raise ValueError(f"expected a number at position {pos} of {rust_debug(text)}")
        if i - start > 9:
            raise ValueError("number in duration is too large")
        n = int(text[start:i])
        unit_start = i
        while i < n_chars and text[i].isascii() and text[i].isalpha():
            i += 1
        unit = text[unit_start:i]
        if unit == "":
            raise ValueError(f'missing unit after {n} (use ms, s, m or h, e.g. "{n}s")')
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {rust_debug(unit)} (use ms, s, m or h)")
        total += n * _UNITS[unit]
    if total > 2**64 - 1:
        raise ValueError("duration is too large")
    return total


def format_duration(ms: int) -> str:
    """Formats milliseconds in the grammar :func:`parse_duration` accepts."""
    if ms == 0:
        return "0ms"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


# --- semantic versions ------------------------------------------------------------------

class _SemverError(ValueError):
    pass


def _qchar(ch: str) -> str:
    if ch == "\0":
        return "'\\0'"
    if ch == "'":
        return "'\\''"
    return "'" + rust_debug(ch)[1:-1].replace('\\"', '"') + "'"


def _semver_numeric(text: str, pos: str) -> tuple[int, str]:
    n = 0
    value = 0
    while n < len(text) and "0" <= text[n] <= "9":
        if value == 0 and n > 0:
            raise _SemverError(f"invalid leading zero in {pos}")
        value = value * 10 + (ord(text[n]) - 48)
        if value > 2**64 - 1:
            raise _SemverError(f"value of {pos} exceeds u64::MAX")
        n += 1
    if n > 0:
        return value, text[n:]
    if text:
        raise _SemverError(f"unexpected character {_qchar(text[0])} while parsing {pos}")
    raise _SemverError(f"unexpected end of input while parsing {pos}")


def _semver_dot(text: str, pos: str) -> str:
    if text.startswith("."):
        return text[1:]
    if text:
        raise _SemverError(f"unexpected character {_qchar(text[0])} after {pos}")
    raise _SemverError(f"unexpected end of input while parsing {pos}")


def _semver_identifier(text: str, pos: str) -> tuple[str, str]:
    acc = 0
    seg = 0
    nondigit = False
    while True:
        i = acc + seg
        ch = text[i] if i < len(text) else None
        if ch is not None and (ch.isascii() and ch.isalpha() or ch == "-"):
            seg += 1
            nondigit = True
        elif ch is not None and "0" <= ch <= "9":
            seg += 1
        else:
            if seg == 0:
                if acc == 0 and ch != ".":
                    return "", text
                raise _SemverError(f"empty identifier segment in {pos}")
            if pos == "pre-release identifier" and seg > 1 and not nondigit and text[acc:].startswith("0"):
                raise _SemverError(f"invalid leading zero in {pos}")
            acc += seg
            if ch == ".":
                acc += 1
                seg = 0
                nondigit = False
            else:
                return text[:acc], text[acc:]


def parse_semver(text: str) -> tuple[int, int, int, str, str]:
    """Parses a semantic version exactly as the Rust ``semver`` crate does (same errors);
    raises ValueError."""
    if text == "":
        raise _SemverError("empty string, expected a semver version")
    major, text = _semver_numeric(text, "major version number")
    text = _semver_dot(text, "major version number")
    minor, text = _semver_numeric(text, "minor version number")
    text = _semver_dot(text, "minor version number")
    patch, text = _semver_numeric(text, "patch version number")
    pos = "patch version number"
    pre = build = ""
    if text.startswith("-"):
        pos = "pre-release identifier"
        pre, text = _semver_identifier(text[1:], pos)
        if pre == "":
            raise _SemverError(f"empty identifier segment in {pos}")
    if text.startswith("+"):
        pos = "build metadata"
        build, text = _semver_identifier(text[1:], pos)
        if build == "":
            raise _SemverError(f"empty identifier segment in {pos}")
    if text:
        raise _SemverError(f"unexpected character {_qchar(text[0])} after {pos}")
    return major, minor, patch, pre, build


# --- the catalog ------------------------------------------------------------------------


def kind_of(value: JSONValue) -> str:
    """Names the JSON type of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _edit_distance(a: str, b: str) -> int:
    """Unrestricted Damerau-Levenshtein distance (strsim's ``damerau_levenshtein``)."""
    a_len, b_len = len(a), len(b)
    if a_len == 0:
        return b_len
    if b_len == 0:
        return a_len
    width = a_len + 2
    max_d = a_len + b_len
    d = [0] * ((a_len + 2) * (b_len + 2))

    def at(i: int, j: int) -> int:
        return j * width + i

    d[0] = max_d
    for i in range(a_len + 1):
        d[at(i + 1, 0)] = max_d
        d[at(i + 1, 1)] = i
    for j in range(b_len + 1):
        d[at(0, j + 1)] = max_d
        d[at(1, j + 1)] = j
    last: dict[str, int] = {}
    for i in range(1, a_len + 1):
        db = 0
        for j in range(1, b_len + 1):
            k = last.get(b[j - 1], 0)
            insertion = d[at(i, j + 1)] + 1
            deletion = d[at(i + 1, j)] + 1
            transposition = d[at(k, db)] + (i - k - 1) + 1 + (j - db - 1)
            substitution = d[at(i, j)] + 1
            if a[i - 1] == b[j - 1]:
                db = j
                substitution -= 1
            d[at(i + 1, j + 1)] = min(substitution, insertion, deletion, transposition)
        last[a[i - 1]] = i
    return d[at(a_len + 1, b_len + 1)]


def _ascii_lower(s: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in s)


def did_you_mean(value: str, candidates: list[str]) -> str:
    """`` (did you mean "x"?)`` for the closest candidate, or ``""``."""
    best: Optional[tuple[int, str]] = None
    vlen = len(value.encode("utf-8"))
    for c in candidates:
        dist = _edit_distance(_ascii_lower(value), _ascii_lower(c))
        limit = max(max(len(c.encode("utf-8")), vlen) // 3, 1)
        if dist <= limit and (best is None or dist < best[0]):
            best = (dist, c)
    return "" if best is None else f" (did you mean {rust_debug(best[1])}?)"


@dataclass(frozen=True)
class InputKind:
    """What values an input accepts: ``any``, ``string``, ``integer``, ``bool``,
    ``string_map``, ``string_list``, ``duration`` or ``one_of`` (with ``options``)."""

    name: str
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        return {
            "any": "any value",
            "string": "a string",
            "integer": "a whole number",
            "bool": "true or false",
            "string_map": "an object of strings",
            "string_list": "a list of strings",
            "duration": 'a duration such as "30s"',
        }.get(self.name) or "one of " + ", ".join(self.options)

    def check(self, value: JSONValue) -> Optional[str]:
        """None when a literal value fits, else the message."""
        n = self.name
        if n == "duration":
            if isinstance(value, str):
                try:
                    parse_duration(value)
                    return None
                except ValueError as e:
                    return str(e)
            return f"expected {self.describe()}, found {kind_of(value)}"
        if n == "one_of":
            if isinstance(value, str):
                if value in self.options:
                    return None
                return f"{rust_debug(value)} is not {self.describe()}{did_you_mean(value, list(self.options))}"
            return f"expected {self.describe()}, found {kind_of(value)}"
        ok = (
            n == "any"
            or (n == "string" and isinstance(value, str))
            or (n == "integer" and isinstance(value, int) and not isinstance(value, bool))
            or (n == "bool" and isinstance(value, bool))
            or (
                n == "string_map"
                and isinstance(value, dict)
                and all(isinstance(v, str) for v in value.values())
            )
            or (
                n == "string_list"
                and isinstance(value, list)
                and all(isinstance(v, str) for v in value)
            )
        )
        return None if ok else f"expected {self.describe()}, found {kind_of(value)}"


ANY = InputKind("any")
STRING = InputKind("string")
INTEGER = InputKind("integer")
STRING_MAP = InputKind("string_map")
STRING_LIST = InputKind("string_list")
DURATION = InputKind("duration")


def one_of(*options: str) -> InputKind:
    return InputKind("one_of", tuple(options))


@dataclass(frozen=True)
class InputSpec:
    """One input of an action."""

    name: str
    kind: InputKind
    required: bool
    doc: str


@dataclass(frozen=True)
class ActionSpec:
    """A built-in action: its ``uses`` name, inputs and outputs."""

    name: str
    summary: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]

    def input(self, name: str) -> Optional[InputSpec]:
        for i in self.inputs:
            if i.name == name:
                return i
        return None


def _req(name: str, kind: InputKind, doc: str) -> InputSpec:
    return InputSpec(name, kind, True, doc)


def _opt(name: str, kind: InputKind, doc: str) -> InputSpec:
    return InputSpec(name, kind, False, doc)


TRANSFORM_OPS = (
    "upper", "lower", "trim", "reverse", "length", "base64_encode", "base64_decode",
    "sha256", "json_pointer", "concat", "split", "replace", "to_json", "from_json",
)
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

BUILTINS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "builtin/artifact",
        "write bytes to a named storage location (which carries a region tag)",
        (
            _req("name", STRING, "artifact name, unique within the execution"),
            _req("location", STRING, "storage location name from the config"),
            _req("content", STRING, "the bytes to write, as text"),
            _opt("encoding", one_of("utf8", "base64"), "how content is encoded (default utf8)"),
            _opt("media_type", STRING, "media type (default text/plain)"),
        ),
        ("name", "digest", "size", "location", "region"),
    ),
    ActionSpec(
        "builtin/echo",
        "return its message as output",
        (_req("message", ANY, "any value"),),
        ("message",),
    ),
    ActionSpec(
        "builtin/exec",
        "run a command (disabled unless enabled in config)",
        (
            _req("command", STRING_LIST, "program and arguments"),
            _opt("stdin", STRING, "text written to standard input"),
            _opt("env", STRING_MAP, "extra environment variables"),
        ),
        ("exit_code", "stdout", "stderr", "truncated"),
    ),
    ActionSpec(
        "builtin/fail",
        "fail, optionally only for the first N attempts (for retry and chaos tests)",
        (
            _opt("message", STRING, "the error message"),
            _opt(
                "attempts",
                INTEGER,
                "fail only the first N attempts, then succeed (default: always fail)",
            ),
        ),
        ("attempt",),
    ),
    ActionSpec(
        "builtin/hash",
        "digest a string",
        (
            _req("data", STRING, "the text to digest"),
            _opt("algorithm", one_of("sha256", "sha512"), "digest algorithm (default sha256)"),
        ),
        ("digest", "algorithm", "size"),
    ),
    ActionSpec(
        "builtin/http",
        "call an allow-listed HTTP endpoint",
        (
            _req("url", STRING, "http or https URL; the host must be allow-listed"),
            _opt("method", one_of(*HTTP_METHODS), "HTTP method (default GET)"),
            _opt("headers", STRING_MAP, "request headers"),
            _opt("body", ANY, "request body: a string, or JSON for other values"),
            _opt(
                "expect_status",
                INTEGER,
                "fail unless the response has this status (default: any 2xx)",
            ),
        ),
        ("status", "body", "body_digest", "json"),
    ),
    ActionSpec(
        "builtin/sleep",
        "wait for a duration",
        (_req("duration", DURATION, "how long to wait"),),
        ("slept_ms",),
    ),
    ActionSpec(
        "builtin/transform",
        "transform a value (upper, lower, trim, json_pointer, concat, replace, …)",
        (
            _req("input", ANY, "the value to transform"),
            _req("op", one_of(*TRANSFORM_OPS), "the operation"),
            _opt("pointer", STRING, "JSON pointer for json_pointer, e.g. /a/0"),
            _opt("separator", STRING, "separator for concat and split"),
            _opt("from", STRING, "text to replace, for replace"),
            _opt("to", STRING, "replacement text, for replace"),
        ),
        ("value",),
    ),
)


def builtin(name: str) -> Optional[ActionSpec]:
    """The built-in action named by a ``uses`` value."""
    for a in BUILTINS:
        if a.name == name:
            return a
    return None


@dataclass(frozen=True)
class PackageRef:
    """``uses: pkg:NAME@VERSION``."""

    name: str
    version: str


Uses = Union[ActionSpec, PackageRef]


class UsesError(ValueError):
    """A ``uses`` value that names nothing."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _canonical_semver(v: tuple[int, int, int, str, str]) -> str:
    out = f"{v[0]}.{v[1]}.{v[2]}"
    if v[3]:
        out += "-" + v[3]
    if v[4]:
        out += "+" + v[4]
    return out


def parse_uses(uses: str) -> Uses:
    """Parses ``builtin/NAME`` or ``pkg:NAME@VERSION``; raises :class:`UsesError`."""
    if uses.startswith("pkg:"):
        rest = uses[4:]
        name, at, version = rest.rpartition("@")
        if not at:
            raise UsesError(
                f"package reference {rust_debug(uses)} has no version",
                "write pkg:NAME@VERSION, e.g. pkg:release-notes@1.0.0",
            )
        name_ok = (
            0 < len(name.encode("utf-8")) <= 128
            and name[0].isascii()
            and name[0].isalnum()
            and all(c.islower() and c.isascii() or c.isdigit() and c.isascii() or c in "._-/" for c in name)
        )
        if not name_ok:
            raise UsesError(
                f"invalid package name {rust_debug(name)}",
                "package names use lowercase letters, digits, '.', '_', '-' and '/'",
            )
        try:
            parsed = parse_semver(version)
        except ValueError as e:
            raise UsesError(
                f"invalid package version {rust_debug(version)}: {e}",
                "use an exact semantic version, e.g. 1.0.0",
            ) from e
        return PackageRef(name, _canonical_semver(parsed))
    spec = builtin(uses)
    if spec is not None:
        return spec
    names = [a.name for a in BUILTINS]
    suggestion = did_you_mean(uses, names)
    bare = f"builtin/{uses}"
    if suggestion == "" and builtin(bare) is not None:
        suggestion = f" (did you mean {rust_debug(bare)}?)"
    raise UsesError(
        f"unknown action {rust_debug(uses)}{suggestion}",
        f"use a built-in action ({', '.join(names)}) or a catalog package pkg:NAME@VERSION",
    )
