"""Manifest validation with the appliance's exact rules: every problem at once, each with its
path (``tasks[2].uses``), stable code and hint. A port of ``src/domain/validate.rs`` and
``src/domain/expr.rs``; the conformance vectors in ``fixtures/conformance/manifests`` keep
the two in agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from . import actions
from .actions import ActionSpec, PackageRef, Uses, UsesError, did_you_mean, kind_of, rust_debug
from .document import DocumentError, JSONValue, document_digest, parse_document

MANIFEST_FIELDS = ("name", "version", "region", "description", "timeout", "tasks")
TASK_FIELDS = ("id", "uses", "with", "needs", "retry", "timeout")
RETRY_FIELDS = ("max_attempts", "backoff", "multiplier")

PROBLEM_CODES = (
    "syntax", "too_large", "unknown_field", "missing_field", "invalid_type", "invalid_value",
    "invalid_version", "invalid_duration", "unknown_action", "unknown_package",
    "unknown_input", "missing_input", "duplicate_id", "unknown_task", "self_reference",
    "cycle", "invalid_expression", "unknown_output", "unknown_region",
)
"""Every stable problem code, as the API and the CLI report them."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest."""

    code: str
    path: str
    message: str
    hint: Optional[str] = None

    def __str__(self) -> str:
        return self.message if not self.path else f"{self.path}: {self.message}"


@dataclass
class Context:
    """What validation knows about the appliance: its regions (empty: any well-formed
    region), published package versions, and limits."""

    regions: Sequence[str] = ()
    packages: dict[str, list[str]] = field(default_factory=dict)
    max_tasks: int = 256
    max_timeout_ms: int = 24 * 3600 * 1000


@dataclass
class ValidManifest:
    """A manifest that passed validation."""

    document: dict[str, JSONValue]
    digest: str
    deps: list[list[int]]
    order: list[int]


class ManifestInvalid(ValueError):
    """Validation failed; ``problems`` lists every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        first = str(problems[0]) if problems else ""
        super().__init__(
            f"the manifest is invalid: {first}"
            if len(problems) == 1
            else f"the manifest has {len(problems)} problems; the first: {first}"
        )
        self.problems = problems


# --- expressions ------------------------------------------------------------------------

_OPEN = "${{"
_CLOSE = "}}"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TaskOutput:
    """``tasks.ID.outputs.KEY[.PATH…]``."""

    task: str
    key: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class ContextRef:
    """``execution.id``, ``manifest.name``, …"""

    name: str


_CONTEXT = {
    ("execution", "id"),
    ("execution", "tenant"),
    ("execution", "region"),
    ("manifest", "name"),
    ("manifest", "version"),
    ("appliance", "url"),
}


def parse_reference(body: str) -> TaskOutput | ContextRef:
    """Parses the inside of ``${{ … }}``; raises ValueError with the reason."""
    parts = body.split(".")
    if any(not _SEGMENT.fullmatch(p) or not p.isascii() for p in parts):
        raise ValueError(
            f"invalid expression {rust_debug(body)}: expected tasks.ID.outputs.KEY or execution.id"
        )
    if len(parts) >= 4 and parts[0] == "tasks" and parts[2] == "outputs":
        return TaskOutput(parts[1], parts[3], tuple(parts[4:]))
    if len(parts) >= 3 and parts[0] == "tasks" and parts[2] != "outputs":
        raise ValueError(f"invalid expression {rust_debug(body)}: write tasks.{parts[1]}.outputs.KEY")
    if parts[0] == "tasks":
        raise ValueError(f"invalid expression {rust_debug(body)}: expected tasks.ID.outputs.KEY")
    if len(parts) == 2 and (parts[0], parts[1]) in _CONTEXT:
        return ContextRef(body)
    if len(parts) >= 2 and parts[0] == "inputs":
        # A package input: resolved at run time from the with: of the pkg: task.
        return ContextRef(body)
    if parts[0] in ("task", "steps"):
        raise ValueError(f'invalid expression {rust_debug(body)}: references start with "tasks."')
    raise ValueError(
        f"invalid expression {rust_debug(body)}: expected tasks.ID.outputs.KEY, inputs.KEY, "
        "execution.id, execution.tenant, execution.region, manifest.name, manifest.version "
        "or appliance.url"
    )


def scan(text: str) -> list[TaskOutput | ContextRef | ValueError]:
    """Every ``${{ … }}`` in a string: parsed references, or the errors of bad ones."""
    out: list[TaskOutput | ContextRef | ValueError] = []
    start = text.find(_OPEN)
    while start >= 0:
        body_start = start + len(_OPEN)
        end = text.find(_CLOSE, body_start)
        if end < 0:
            out.append(ValueError('unterminated expression: missing "}}"'))
            break
        try:
            out.append(parse_reference(text[body_start:end].strip(_RUST_WS)))
        except ValueError as e:
            out.append(e)
        start = text.find(_OPEN, end + len(_CLOSE))
    return out


# Rust's str::trim removes Unicode White_Space characters.
_RUST_WS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _strings(value: JSONValue, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")


def _contains_expression(value: JSONValue) -> bool:
    return any(_OPEN in s for _, s in _strings(value, ""))


# --- the checker ------------------------------------------------------------------------


def _child(path: str, key: str) -> str:
    simple = key != "" and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    if simple:
        return key if path == "" else f"{path}.{key}"
    return f"{path}[{rust_debug(key)}]"


def _is_int(v: JSONValue) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class _Task:
    path: str
    id: Optional[str]
    uses: Optional[Uses]
    with_: Optional[dict[str, JSONValue]]
    with_invalid: bool
    needs: list[tuple[str, Any]]


class _Checker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.problems: list[Problem] = []

    def push(self, code: str, path: str, message: str, hint: Optional[str] = None) -> None:
        self.problems.append(Problem(code, path, message, hint))

    def type_error(self, path: str, expected: str, found: JSONValue, hint: Optional[str] = None) -> None:
        self.push("invalid_type", path, f"expected {expected}, found {kind_of(found)}", hint)

    def object(
        self,
        value: JSONValue,
        path: str,
        what: str,
        fields: Sequence[str],
        required: Sequence[tuple[str, str]],
    ) -> Optional[dict[str, JSONValue]]:
        if not isinstance(value, dict):
            shown = "the manifest" if path == "" else what
            self.push(
                "invalid_type",
                path,
                f"expected {shown} to be an object, found {kind_of(value)}",
                f"{what} fields are: {', '.join(fields)}",
            )
            return None
        for key in value:
            if key not in fields:
                self.push(
                    "unknown_field",
                    _child(path, key),
                    f"unknown field in {what}{did_you_mean(key, list(fields))}",
                    f"{what} fields are: {', '.join(fields)}",
                )
        for name, hint in required:
            if name not in value:
                self.push("missing_field", _child(path, name), f"missing required field {rust_debug(name)}", hint)
        return value

    def string(self, m: dict[str, JSONValue], path: str, key: str, hint: Optional[str] = None) -> Optional[str]:
        if key not in m:
            return None
        v = m[key]
        if isinstance(v, str):
            return v
        self.type_error(_child(path, key), "a string", v, hint)
        return None

    def duration(self, m: dict[str, JSONValue], path: str, key: str, max_ms: int) -> None:
        text = self.string(m, path, key, 'write a duration such as "30s"')
        if text is None:
            return
        p = _child(path, key)
        try:
            ms = actions.parse_duration(text)
        except ValueError as e:
            self.push(
                "invalid_duration",
                p,
                f"invalid duration {rust_debug(text)}: {e}",
                'write an integer and a unit (ms, s, m, h), e.g. "30s" or "1m30s"',
            )
            return
        if ms == 0:
            self.push("invalid_duration", p, f"duration {rust_debug(text)} must be greater than zero")
        elif ms > max_ms:
            self.push(
                "invalid_duration",
                p,
                f"duration {rust_debug(text)} exceeds the limit of {actions.format_duration(max_ms)}",
            )

    def top_level(self, doc: JSONValue) -> list[_Task]:
        m = self.object(
            doc,
            "",
            "manifest",
            MANIFEST_FIELDS,
            (
                ("name", "add name: my-workflow"),
                ("version", 'add version: "1.0.0"'),
                ("region", "add region: with the region where the data must stay"),
                ("tasks", "add tasks: with at least one task"),
            ),
        )
        if m is None:
            return []
        name = self.string(m, "", "name")
        if name is not None:
            b = name.encode("utf-8")
            ok = (
                0 < len(b) <= 64
                and (chr(b[0]).islower() and b[0] < 128 or chr(b[0]).isdigit() and b[0] < 128)
                and all(c.isascii() and (c.islower() or c.isdigit() or c in "._-") for c in name)
            )
            if not ok:
                self.push(
                    "invalid_value",
                    "name",
                    f"invalid workflow name {rust_debug(name)}",
                    "use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
                )
        if "version" in m:
            v = m["version"]
            if isinstance(v, str):
                try:
                    actions.parse_semver(v)
                except ValueError as e:
                    self.push(
                        "invalid_version",
                        "version",
                        f"{rust_debug(v)} is not a semantic version: {e}",
                        'use MAJOR.MINOR.PATCH, e.g. "1.0.0"',
                    )
            else:
                self.type_error("version", "a string", v, _version_hint(v))
        region = self.string(m, "", "region")
        if region is not None:
            self.region(region)
        desc = self.string(m, "", "description")
        if desc is not None and len(desc.encode("utf-8")) > 4096:
            self.push(
                "too_large",
                "description",
                f"description is {len(desc.encode('utf-8'))} bytes; the limit is 4096",
            )
        if "timeout" in m:
            self.duration(m, "", "timeout", self.ctx.max_timeout_ms)
        if "tasks" not in m:
            return []
        tasks = m["tasks"]
        if not isinstance(tasks, list):
            self.type_error("tasks", "a list of tasks", tasks, "write tasks: followed by items such as - id: hello")
            return []
        if not tasks:
            self.push(
                "invalid_value",
                "tasks",
                "a workflow needs at least one task",
                "add a task, e.g. - {id: hello, uses: builtin/echo, with: {message: hi}}",
            )
        if len(tasks) > self.ctx.max_tasks:
            self.push(
                "too_large",
                "tasks",
                f"{len(tasks)} tasks; the limit is {self.ctx.max_tasks}",
                "split the workflow or raise limits.max_tasks",
            )
            return []
        out = []
        for i, t in enumerate(tasks):
            view = self.task(t, f"tasks[{i}]")
            if view is not None:
                out.append(view)
        return out

    def region(self, region: str) -> None:
        well_formed = (
            0 < len(region.encode("utf-8")) <= 32
            and region[0].isascii()
            and region[0].islower()
            and all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in region)
        )
        if not well_formed:
            lower = "".join(c.lower() if c.isascii() else c for c in region)
            hint = (
                f"regions are lowercase: region: {lower}"
                if lower != region and lower
                else "use lowercase letters, digits and '-', e.g. eu-west"
            )
            self.push("invalid_value", "region", f"invalid region {rust_debug(region)}", hint)
            return
        regions = list(self.ctx.regions)
        if regions and region not in regions:
            self.push(
                "unknown_region",
                "region",
                f"unknown region {rust_debug(region)}{did_you_mean(region, regions)}",
                f"regions of this appliance: {', '.join(regions)}",
            )

    def task(self, value: JSONValue, path: str) -> Optional[_Task]:
        m = self.object(
            value,
            path,
            "task",
            TASK_FIELDS,
            (
                ("id", "add id: with a unique task name"),
                ("uses", "add uses: builtin/echo (or another action)"),
            ),
        )
        if m is None:
            return None
        task_id = self.string(m, path, "id")
        if task_id is not None:
            ok = (
                0 < len(task_id.encode("utf-8")) <= 64
                and task_id[0].isascii()
                and task_id[0].islower()
                and all(c.isascii() and (c.islower() or c.isdigit() or c in "_-") for c in task_id)
            )
            if not ok:
                self.push(
                    "invalid_value",
                    _child(path, "id"),
                    f"invalid task id {rust_debug(task_id)}",
                    "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter",
                )
        uses: Optional[Uses] = None
        uses_text = self.string(m, path, "uses")
        if uses_text is not None:
            try:
                uses = actions.parse_uses(uses_text)
            except UsesError as e:
                self.push("unknown_action", _child(path, "uses"), e.message, e.hint)
        with_: Optional[dict[str, JSONValue]] = None
        if "with" in m:
            w = m["with"]
            if isinstance(w, dict):
                with_ = w
            elif w is not None:
                self.type_error(
                    _child(path, "with"),
                    "an object of inputs",
                    w,
                    "write with: followed by key: value lines",
                )
        needs: list[tuple[str, Any]] = []
        if "needs" in m:
            n = m["needs"]
            if isinstance(n, list):
                for i, item in enumerate(n):
                    p = f"{path}.needs[{i}]"
                    if isinstance(item, str):
                        needs.append((p, item))
                    else:
                        self.type_error(p, "a task id", item)
            else:
                self.type_error(
                    _child(path, "needs"),
                    "a list of task ids",
                    n,
                    f"write needs: [{n}]" if isinstance(n, str) else "write needs: [other-task]",
                )
        if "retry" in m:
            self.retry(m["retry"], _child(path, "retry"))
        if "timeout" in m:
            self.duration(m, path, "timeout", self.ctx.max_timeout_ms)
        with_invalid = with_ is None and m.get("with") is not None
        return _Task(path, task_id, uses, with_, with_invalid, needs)

    def retry(self, value: JSONValue, path: str) -> None:
        m = self.object(value, path, "retry", RETRY_FIELDS, (("max_attempts", "add max_attempts: 3"),))
        if m is None:
            return
        if "max_attempts" in m:
            v = m["max_attempts"]
            if _is_int(v) and isinstance(v, int) and v >= 0:
                if not 1 <= v <= 10:
                    self.push(
                        "invalid_value",
                        _child(path, "max_attempts"),
                        f"max_attempts is {v}; it must be between 1 and 10",
                    )
            else:
                self.type_error(_child(path, "max_attempts"), "a whole number from 1 to 10", v)
        if "backoff" in m:
            self.duration(m, path, "backoff", 3_600_000)
        if "multiplier" in m:
            v = m["multiplier"]
            if _is_number(v):
                f = float(v)  # type: ignore[arg-type]
                if not 1.0 <= f <= 10.0:
                    self.push(
                        "invalid_value",
                        _child(path, "multiplier"),
                        f"multiplier is {_rust_float(f)}; it must be between 1 and 10",
                    )
            else:
                self.type_error(_child(path, "multiplier"), "a number from 1 to 10", v)

    def semantics(self, tasks: list[_Task]) -> list[list[int]]:
        index: dict[str, int] = {}
        for i, t in enumerate(tasks):
            if t.id is None:
                continue
            if t.id in index:
                self.push(
                    "duplicate_id",
                    _child(t.path, "id"),
                    f"duplicate task id {rust_debug(t.id)} (first defined at {tasks[index[t.id]].path})",
                    "give every task a unique id",
                )
            else:
                index[t.id] = i
        ids = [t.id for t in tasks if t.id is not None]
        deps: list[list[int]] = [[] for _ in tasks]
        for i, t in enumerate(tasks):
            if isinstance(t.uses, PackageRef):
                versions = self.ctx.packages.get(t.uses.name, [])
                if t.uses.version not in versions:
                    hint = (
                        "publish and install the package first; `maestro package list` shows the catalog"
                        if not versions
                        else f"installed versions: {', '.join(sorted(versions))}"
                    )
                    self.push(
                        "unknown_package",
                        _child(t.path, "uses"),
                        f'package "{t.uses.name}@{t.uses.version}" is not in the catalog',
                        hint,
                    )
            spec = t.uses if isinstance(t.uses, ActionSpec) else None
            if spec is not None and t.with_ is not None:
                self.inputs(spec, t.with_, _child(t.path, "with"))
            elif spec is not None and t.with_ is None and not t.with_invalid:
                for inp in spec.inputs:
                    if inp.required:
                        self.push(
                            "missing_input",
                            _child(t.path, "with"),
                            f"missing required input {rust_debug(inp.name)} for {spec.name}",
                            f"add with: {{{inp.name}: …}} ({inp.doc})",
                        )
            seen: list[str] = []
            for p, need in t.needs:
                if need in seen:
                    self.push(
                        "invalid_value",
                        p,
                        f"{rust_debug(need)} is listed twice in needs",
                        "list each task once",
                    )
                    continue
                seen.append(need)
                j = index.get(need)
                if j == i:
                    self.push("self_reference", p, f"task {rust_debug(need)} cannot need itself")
                elif j is not None:
                    if j not in deps[i]:
                        deps[i].append(j)
                else:
                    self.push(
                        "unknown_task",
                        p,
                        f"unknown task {rust_debug(need)}{did_you_mean(need, ids)}",
                        f"tasks in this manifest: {', '.join(ids)}",
                    )
            if t.with_ is not None:
                refs: list[tuple[str, TaskOutput | ContextRef | ValueError]] = []
                for p, s in _strings(t.with_, _child(t.path, "with")):
                    if _OPEN in s:
                        for r in scan(s):
                            refs.append((p, r))
                for p, r in refs:
                    if isinstance(r, ValueError):
                        self.push("invalid_expression", p, str(r), "write ${{ tasks.ID.outputs.KEY }}")
                    elif isinstance(r, TaskOutput):
                        j = index.get(r.task)
                        if j == i:
                            self.push(
                                "self_reference",
                                p,
                                f"task {rust_debug(r.task)} cannot reference its own outputs",
                            )
                        elif j is not None:
                            if j not in deps[i]:
                                deps[i].append(j)
                            producer = tasks[j].uses
                            if isinstance(producer, ActionSpec) and r.key not in producer.outputs:
                                self.push(
                                    "unknown_output",
                                    p,
                                    f"{producer.name} has no output {rust_debug(r.key)}"
                                    f"{did_you_mean(r.key, list(producer.outputs))}",
                                    f"outputs of {producer.name}: {', '.join(producer.outputs)}",
                                )
                        else:
                            self.push(
                                "unknown_task",
                                p,
                                f"reference to unknown task {rust_debug(r.task)}{did_you_mean(r.task, ids)}",
                                f"tasks in this manifest: {', '.join(ids)}",
                            )
        return deps

    def inputs(self, spec: ActionSpec, with_: dict[str, JSONValue], path: str) -> None:
        names = [i.name for i in spec.inputs]
        for key, value in with_.items():
            inp = spec.input(key)
            if inp is None:
                self.push(
                    "unknown_input",
                    _child(path, key),
                    f"unknown input for {spec.name}{did_you_mean(key, names)}",
                    f"inputs of {spec.name}: {', '.join(names)}",
                )
                continue
            if _contains_expression(value):
                continue
            err = inp.kind.check(value)
            if err is not None:
                code = "invalid_duration" if inp.kind.name == "duration" and isinstance(value, str) else "invalid_type"
                self.push(code, _child(path, key), err, f"{inp.name}: {inp.doc}")
        for inp in spec.inputs:
            if inp.required and inp.name not in with_:
                self.push(
                    "missing_input",
                    path,
                    f"missing required input {rust_debug(inp.name)} for {spec.name}",
                    f"add {inp.name}: … ({inp.doc})",
                )

    def order(self, tasks: list[_Task], deps: list[list[int]]) -> Optional[list[int]]:
        n = len(deps)
        indegree = [len(d) for d in deps]
        dependents: list[list[int]] = [[] for _ in range(n)]
        for i, ds in enumerate(deps):
            for d in ds:
                dependents[d].append(i)
        ready = [i for i in range(n) if indegree[i] == 0][::-1]
        order: list[int] = []
        while ready:
            i = ready.pop()
            order.append(i)
            for j in reversed(dependents[i]):
                indegree[j] -= 1
                if indegree[j] == 0:
                    ready.append(j)
        if len(order) == n:
            return order
        start = next((i for i in range(n) if indegree[i] > 0), None)
        if start is None:
            return None
        seen: dict[int, int] = {}
        path = [start]
        cur = start
        while True:
            seen[cur] = len(path) - 1
            nxt = next((d for d in deps[cur] if indegree[d] > 0), None)
            if nxt is None:
                return None
            if nxt in seen:
                cycle = path[seen[nxt] :]
                first = min(cycle)
                rot = cycle.index(first)
                cycle = cycle[rot:] + cycle[:rot]
                names = [tasks[c].id or "?" for c in cycle]
                names.append(names[0])
                self.push(
                    "cycle",
                    _child(tasks[first].path, "needs"),
                    f"dependency cycle: {' -> '.join(names)}",
                    "remove one of these needs or references",
                )
                return None
            path.append(nxt)
            cur = nxt


def _is_number(v: JSONValue) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rust_float(f: float) -> str:
    """Rust's ``{}`` for an f64 (``0.5``, ``50``, ``1e300``)."""
    if f == int(f) and abs(f) < 1e16:
        return str(int(f))
    r = repr(f)
    if "e" in r:
        mant, _, exp = r.partition("e")
        return f"{mant}e{int(exp)}"
    return r


def _version_hint(v: JSONValue) -> str:
    """The hint for a version that is not a string: a number, unquoted, was read as one (and
    a float has lost how it was written: ``1.10`` is the number 1.1)."""
    if isinstance(v, float):
        n = _rust_number(v)
        return f'quote the version as you meant it (unquoted it is the number {n}): version: "{n}.0"'
    if _is_number(v):
        return f'quote the version: version: "{_rust_number(v)}.0.0"'
    return 'quote the version: version: "1.0.0"'


def _rust_number(v: JSONValue) -> str:
    """serde_json's Display of a number (integers as is, floats like Rust)."""
    if isinstance(v, float):
        r = repr(v)
        return r if "e" not in r and "inf" not in r else _rust_float(v)
    return str(v)


def validate(document: JSONValue, ctx: Optional[Context] = None) -> ValidManifest:
    """Validates a parsed document; raises :class:`ManifestInvalid` with every problem."""
    checker = _Checker(ctx or Context())
    tasks = checker.top_level(document)
    deps = checker.semantics(tasks)
    ids_usable = all(t.id is not None for t in tasks) and not any(
        p.code == "duplicate_id" for p in checker.problems
    )
    order = checker.order(tasks, deps) if ids_usable else None
    if checker.problems:
        raise ManifestInvalid(checker.problems)
    assert isinstance(document, dict)
    return ValidManifest(document, document_digest(document), deps, order or [])


def load(text: str, ctx: Optional[Context] = None) -> ValidManifest:
    """Parses YAML or JSON text and validates it; raises :class:`ManifestInvalid`."""
    try:
        document = parse_document(text)
    except DocumentError as e:
        raise ManifestInvalid([Problem(e.code, "", e.message, e.hint)]) from e
    return validate(document, ctx)


def problems(text: str, ctx: Optional[Context] = None) -> list[Problem]:
    """Every problem of a manifest text (empty when it is valid)."""
    try:
        load(text, ctx)
    except ManifestInvalid as e:
        return e.problems
    return []
