"""Manifest documents: YAML or JSON text to a JSON value, with the appliance's exact rules.

Mirrors ``parse_document`` in ``src/domain/validate.rs``: JSON when the text starts with ``{``
(after a BOM and whitespace), YAML otherwise, resolved like serde-saphyr with strict
booleans (YAML 1.2 core booleans, ``null``/``~``/empty as null, decimal/hex/octal/binary
integers, floats; non-finite floats, duplicate keys and null-like keys are errors), then the
size and depth limits. Also the RFC 8785 (JCS) canonical form and the document digest.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Union

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]
"""A parsed document value (what serde_json's ``Value`` holds)."""

MAX_DEPTH = 32
"""Maximum nesting depth of a manifest document."""
MAX_DOCUMENT_BYTES = 1024 * 1024
"""Maximum size of a manifest document, in bytes."""

_JSON_RECURSION_LIMIT = 128  # serde_json's default recursion limit
_YAML_MAX_DEPTH = 64  # serde-saphyr's default budget
_YAML_MAX_NODES = 250_000
_YAML_MAX_ALIASES = 50_000

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)


class DocumentError(Exception):
    """The text is not a document the appliance would accept.

    ``code`` is ``syntax`` or ``too_large``, as in the validator's problems.
    """

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


# --- JSON -------------------------------------------------------------------------------


def _json_number_int(text: str) -> int | float:
    value = int(text)
    if value > U64_MAX or value < I64_MIN:
        return float(value)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth >= limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _check_utf8(value: JSONValue) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            _check_utf8(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            k.encode("utf-8")
            _check_utf8(v)


def _no_duplicate_keys(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """An object whose keys are all different: a repeated key is an error, as in YAML."""
    out: dict[str, JSONValue] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _parse_json(text: str) -> JSONValue:
    if _json_depth_exceeds(text, _JSON_RECURSION_LIMIT):
        raise DocumentError(
            "syntax",
            "invalid JSON: recursion limit exceeded",
            "check brackets, commas and quotes around that position",
        )
    try:
        value: JSONValue = json.loads(
            text,
            parse_int=_json_number_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
        _check_utf8(value)
    except (ValueError, UnicodeEncodeError) as e:
        raise DocumentError(
            "syntax",
            f"invalid JSON: {e}",
            "check brackets, commas and quotes around that position",
        ) from e
    return value


# --- YAML -------------------------------------------------------------------------------

_PLAIN = "tag:maestro.conductor,2024:plain"
_TAG_PREFIX = "tag:yaml.org,2002:"


class _Resolver(BaseResolver):
    """Marks untagged plain scalars so that they are resolved by :func:`resolve_plain`."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                return _PLAIN
            return _TAG_PREFIX + "str"
        if kind is SequenceNode:
            return _TAG_PREFIX + "seq"
        return _TAG_PREFIX + "map"


class _Loader(Reader, Scanner, Parser, Composer, SafeConstructor, _Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)


_NULLS = ("", "~", "null", "Null", "NULL")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RUST_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


class _NonFinite(Exception):
    pass


def _yaml_trim(s: str) -> str:
    return s.strip(" \t\r\n")


def _digits(digits: str, radix: int) -> int | None:
    """Digits with single underscores between them (serde-saphyr's rule)."""
    if not digits:
        return None
    value = 0
    saw = False
    for i, ch in enumerate(digits):
        if ch == "_":
            if i == 0 or digits[i - 1] == "_" or i + 1 >= len(digits) or digits[i + 1] == "_":
                return None
            continue
        try:
            d = int(ch, 16)
        except ValueError:
            return None
        if d >= radix:
            return None
        value = value * radix + d
        saw = True
    return value if saw else None


def _radix(rest: str) -> tuple[int, str]:
    if rest[:2] in ("0x", "0X"):
        return 16, rest[2:]
    if rest[:2] in ("0o", "0O"):
        return 8, rest[2:]
    if rest[:2] in ("0b", "0B"):
        return 2, rest[2:]
    return 10, rest


def _parse_int(t: str, signed: bool) -> int | None:
    if t.startswith("-"):
        if not signed:
            return None
        neg, rest = True, t[1:]
    elif t.startswith("+"):
        neg, rest = False, t[1:]
    else:
        neg, rest = False, t
    radix, digits = _radix(rest)
    if radix == 10 and digits.startswith("0") and digits != "0":
        return None
    value = _digits(digits, radix)
    if value is None:
        return None
    if neg:
        value = -value
        return value if value >= I64_MIN else None
    if signed:
        return value if value <= 2**63 - 1 else None
    return value if value <= U64_MAX else None


def _leading_zero_decimal(t: str) -> bool:
    digits = t[1:] if t[:1] in ("+", "-") else t
    return len(digits) > 1 and digits.startswith("0") and digits.isascii() and digits.isdigit()


def _rust_f64(t: str) -> float | None:
    """Rust's ``f64::from_str`` (no underscores, ``inf``/``nan`` spellings)."""
    if _FLOAT_RE.fullmatch(t) or _RUST_SPECIAL_FLOAT.fullmatch(t):
        return float(t)
    return None


def _parse_float(s: str) -> float | None:
    """A finite YAML float, or None; raises :class:`_NonFinite` for non-finite ones."""
    t = _yaml_trim(s)
    negative = t.startswith("-")
    unsigned = t[1:] if t[:1] in ("+", "-") else t
    if unsigned in (".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF"):
        raise _NonFinite(t)
    _ = negative
    value = _rust_f64(t)
    if value is not None and math.isfinite(value):
        return value
    if unsigned[:1].isdigit() and value is not None and math.isinf(value):
        raise _NonFinite(t)
    return None


def resolve_plain(s: str) -> JSONValue:
    """The JSON value of an untagged plain YAML scalar, as serde-saphyr infers it."""
    if s in _NULLS:
        return None
    t = _yaml_trim(s)
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    unsigned = t[1:] if t[:1] in ("+", "-") else t
    if unsigned[:2] in ("0X", "0O", "0B") or (
        t[:1] in ("+", "-") and unsigned in (".nan", ".NaN", ".NAN")
    ):
        return s
    if t.startswith("-"):
        if not _leading_zero_decimal(t):
            v = _parse_int(t, signed=True)
            if v is not None:
                return v
    else:
        v = _parse_int(t, signed=False)
        if v is not None:
            return v
    f = _parse_float(s)
    if f is not None:
        return f
    return s


class _Builder:
    def __init__(self) -> None:
        self.nodes = 0
        self.aliases = 0
        self.seen: set[int] = set()

    def build(self, node: Node, depth: int) -> JSONValue:
        if depth > _YAML_MAX_DEPTH:
            raise DocumentError(
                "too_large",
                "manifest exceeds the parser's limits: nesting too deep",
                "reduce nesting and alias use",
            )
        self.nodes += 1
        if id(node) in self.seen:
            self.aliases += 1
        else:
            self.seen.add(id(node))
        if self.nodes > _YAML_MAX_NODES or self.aliases > _YAML_MAX_ALIASES:
            raise DocumentError(
                "too_large",
                "manifest exceeds the parser's limits: too many nodes or aliases",
                "reduce nesting and alias use",
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return [self.build(item, depth + 1) for item in node.value]
        if isinstance(node, MappingNode):
            return self.mapping(node, depth)
        raise DocumentError("syntax", "invalid YAML: unknown node")

    def scalar(self, node: ScalarNode) -> JSONValue:
        value: str = node.value
        tag = node.tag
        if tag == _PLAIN:
            try:
                return resolve_plain(value)
            except _NonFinite as e:
                raise DocumentError(
                    "syntax",
                    f"invalid YAML: non-finite float {e} is not allowed",
                    "check indentation and quoting around that position",
                ) from e
        short = tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else None
        t = _yaml_trim(value)
        if short == "null":
            return None
        if short == "bool":
            if t in _TRUE:
                return True
            if t in _FALSE:
                return False
            raise DocumentError("syntax", f"invalid YAML: {value!r} is not a boolean")
        if short == "int":
            v = _parse_int(t, signed=t.startswith("-"))
            if v is None:
                raise DocumentError("syntax", f"invalid YAML: {value!r} is not an integer")
            return v
        if short == "float":
            try:
                f = _parse_float(value)
            except _NonFinite as e:
                raise DocumentError("syntax", f"invalid YAML: non-finite float {e}") from e
            if f is None:
                i = _parse_int(t, signed=True)
                if i is None:
                    raise DocumentError("syntax", f"invalid YAML: {value!r} is not a float")
                return float(i)
            return f
        return value

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise DocumentError(
                "syntax",
                "invalid YAML: mapping keys must be scalars",
                "check indentation and quoting around that position",
            )
        if node.tag == _PLAIN and node.value in _NULLS:
            raise DocumentError(
                "syntax",
                "invalid YAML: a mapping key is null",
                "check indentation and quoting around that position",
            )
        key: str = node.value
        return key

    def mapping(self, node: MappingNode, depth: int) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        merged: dict[str, JSONValue] = {}
        for key_node, value_node in node.value:
            if (
                isinstance(key_node, ScalarNode)
                and key_node.value == "<<"
                and key_node.tag in (_PLAIN, _TAG_PREFIX + "merge")
            ):
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if not isinstance(src, MappingNode):
                        raise DocumentError("syntax", "invalid YAML: merge of a non-mapping")
                    for k, v in self.mapping(src, depth).items():
                        merged.setdefault(k, v)
                continue
            key = self.key(key_node)
            if key in out:
                raise DocumentError(
                    "syntax",
                    f"invalid YAML: duplicate mapping key {key!r}",
                    "check indentation and quoting around that position",
                )
            out[key] = self.build(value_node, depth + 1)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out


def _parse_yaml(text: str) -> JSONValue:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder().build(node, 1)
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "syntax error"
        raise DocumentError(
            "syntax",
            f"invalid YAML: {first}",
            "check indentation and quoting around that position",
        ) from e
    except RecursionError as e:
        raise DocumentError(
            "too_large",
            "manifest exceeds the parser's limits: nesting too deep",
            "reduce nesting and alias use",
        ) from e
    finally:
        loader.dispose()


# --- the document -----------------------------------------------------------------------


def depth(value: JSONValue) -> int:
    """Nesting depth as the validator counts it (scalars 0, each list or object +1)."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def parse_document(text: str) -> JSONValue:
    """Parses YAML or JSON text into a JSON value; raises :class:`DocumentError`."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            "too_large",
            f"manifest is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            "split large inputs into artifacts",
        )
    trimmed = text.lstrip("\ufeff").lstrip()
    if trimmed.startswith("{"):
        value = _parse_json(trimmed)
    else:
        value = _parse_yaml(text)
    if depth(value) > MAX_DEPTH:
        raise DocumentError("too_large", f"manifest is nested deeper than {MAX_DEPTH} levels")
    return value


# --- RFC 8785 ---------------------------------------------------------------------------


def _es6_number(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        raise ValueError("JCS cannot encode a non-finite number")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    exp = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    whole = str(int(int_part + frac_part))
    digits = whole.rstrip("0")
    zeros = len(whole) - len(digits)
    # value = digits x 10^(n - k), as in ECMAScript's Number::toString
    n = exp - len(frac_part) + zeros + len(digits)
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(
            abs(e)
        )
    return sign + out


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jcs_string(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_key(s: str) -> bytes:
    return s.encode("utf-16-be", errors="surrogatepass")


def canonical_json(value: JSONValue) -> bytes:
    """RFC 8785 (JCS) canonical JSON of a value, as UTF-8 bytes."""
    parts: list[str] = []

    def emit(v: JSONValue) -> None:
        if v is None:
            parts.append("null")
        elif v is True:
            parts.append("true")
        elif v is False:
            parts.append("false")
        elif isinstance(v, int):
            parts.append(_es6_number(float(v)))
        elif isinstance(v, float):
            parts.append(_es6_number(v))
        elif isinstance(v, str):
            parts.append(_jcs_string(v))
        elif isinstance(v, list):
            parts.append("[")
            for i, item in enumerate(v):
                if i:
                    parts.append(",")
                emit(item)
            parts.append("]")
        elif isinstance(v, dict):
            parts.append("{")
            for i, key in enumerate(sorted(v, key=_utf16_key)):
                if i:
                    parts.append(",")
                parts.append(_jcs_string(key))
                parts.append(":")
                emit(v[key])
            parts.append("}")
        else:
            raise TypeError(f"not a JSON value: {type(v).__name__}")

    emit(value)
    return "".join(parts).encode("utf-8")


def document_digest(value: JSONValue) -> str:
    """``sha256:<hex>`` of the JCS form of a parsed manifest document."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
