"""Evaluates our shipped Rego policies with the real Go OPA engine (the reference peer).

This file owns the OPA side of the policy differential test and benchmark: the Rust test
suite pipes inputs in and compares what comes out with what regorus decides. It uses the
PyPI package opa-golib-python-bindings (module `opa_bindings`, OPA v1.20 embedded through
cgo), pinned in requirements.txt and installed into ./.venv by scripts/test.

    python eval.py --policy-dir DIR [--data FILE.json] < inputs.jsonl > results.jsonl
    python eval.py --policy-dir DIR [--data FILE.json] --bench 20000 < inputs.jsonl
    python eval.py --version

Loading. Every `*.rego` file directly in DIR except `*_test.rego` is loaded once (module
name: the file name), as Rego v1: OPA here has no Rego v0 mode. `--data` is a JSON object
that is the whole base `data` document (e.g. {"mc": {"cross_tenant_readers": {...}}}).
Everything is compiled once at start-up; a parse or compile error, an unreadable file or a
data file that is not a JSON object prints a message on stderr and exits 2.

Evaluation (default mode). stdin is JSON Lines, one object per line:

    {"package": "mc.isolation", "input": {...}}

"input" may be left out (then `input` is undefined in the policy); `"input": null` makes it
JSON null. All of stdin is read before anything is written, so a caller may write all its
input before reading (no pipe deadlock). Blank lines are skipped; every other line gives
exactly one output line, in the same order:

    {"document":<the value of data.<package>>}   the whole package document
    {"undefined":true}                           data.<package> is undefined (no such package)
    {"error":"<code>: <message>"}                a bad line, or an evaluation error

Normalisation, so that the Rust side can compare with its own normalised output:
- Rego sets come out as JSON arrays (OPA has no other JSON form for them).
- Every array, at every depth, is sorted (after its elements are normalised) by the
  canonical JSON text of its elements, compared by Unicode code point, which is the byte
  order of UTF-8. Array order is therefore not compared, for sets and arrays alike.
- Canonical JSON text, used both as the sort key and for each output line, is
  json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False): object
  keys sorted, no whitespace, non-ASCII written as UTF-8. For the strings, integers and
  booleans our policies produce this is exactly serde_json::to_string of a value whose
  maps are sorted (serde_json's default Map). Floats are written the way Python writes
  them (1e+21, 0.5) and may differ from serde_json's text (1e21).
- Numbers keep their JSON text through the engine (large integers stay exact).

Benchmark (`--bench N` or `--bench Ts`). The input lines are grouped by package (the
"document" lines of the default mode are not written). For each package, in order of first
appearance, its inputs are evaluated round-robin: N decisions (a plain integer) or for T
seconds (a number with an "s" suffix, e.g. 5s), after an unmeasured warm-up of one pass over
the inputs (at least 200 decisions) that also prepares the query. One decision is one
query, timed alone with time.perf_counter_ns; by default (`--bench-query decision`) it is

    allow := data.<package>.allow; deny := data.<package>.deny

which mirrors the appliance's real decision (it evaluates `allow` and `deny`);
`--bench-query document` times the whole package document instead. The latency includes
the Python to Go call overhead of the bindings: json.dumps of the input, the cgo call, JSON
decoding and encoding on the Go side and json.loads of the result. One line per package:

    {"package":"mc.isolation","query":"decision","decisions":20000,
     "decisions_per_second":12345.6,"p50_us":75.1,"p99_us":130.2}

decisions_per_second is decisions divided by the wall time of the measured loop; p50/p99
are nearest-rank percentiles of the per-decision latencies, in microseconds. Python's
garbage collector is paused while a package is measured.

`--version` prints the bindings' version and the OPA version compiled into them (the
bindings have no API for it: it is read from the Go build information in the library).

Exit codes: 0 (including lines answered with {"error": ...}), 1 if a benchmark decision
fails, 2 for usage and loading errors.
"""

import argparse
import gc
import importlib.metadata
import json
import math
import re
import sys
import time
from pathlib import Path

try:
    import opa_bindings
    from opa_bindings import OpaEngine, OpaError, OpaUndefinedError
except ImportError as e:  # pragma: no cover - depends on the environment
    print(
        f"eval.py: cannot import opa_bindings ({e}); install it with: "
        "pip install --ignore-requires-python -r tests/interop/opa/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

DIST = "opa-golib-python-bindings"
# A package path: dotted identifiers. Validated because it becomes part of a query, and
# every distinct query is prepared and cached by the engine.
PACKAGE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NO_INPUT = object()


class UsageError(Exception):
    pass


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise(value):
    """Sorts every array, at every depth, by the canonical JSON of its (normalised) items."""
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        keyed = sorted(((canonical(v), v) for v in items), key=lambda kv: kv[0])
        return [v for _, v in keyed]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def opa_version() -> str:
    """The OPA module version compiled into the bindings' Go library (its build info)."""
    lib = Path(opa_bindings.__file__).with_name("libopabridge.so")
    try:
        blob = lib.read_bytes()
    except OSError:
        return "unknown"
    m = re.search(rb"\tgithub\.com/open-policy-agent/opa\t(v[0-9][^\t\r\n]*)", blob)
    return m.group(1).decode() if m else "unknown"


def load_engine(policy_dir: str, data_file: str | None) -> OpaEngine:
    root = Path(policy_dir)
    if not root.is_dir():
        raise UsageError(f"--policy-dir {policy_dir}: not a directory")
    files = sorted(
        p for p in root.glob("*.rego") if p.is_file() and not p.name.endswith("_test.rego")
    )
    if not files:
        raise UsageError(f"--policy-dir {policy_dir}: no *.rego files (other than tests)")
    engine = OpaEngine()
    try:
        for path in files:
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise UsageError(f"cannot read {path}: {e}") from None
            try:
                engine.add_policy(path.name, source)
            except OpaError as e:
                raise UsageError(f"cannot load {path}: {e}") from None
        if data_file is not None:
            try:
                with open(data_file, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise UsageError(f"--data {data_file}: {e}") from None
            if not isinstance(data, dict):
                raise UsageError(f"--data {data_file}: must be a JSON object (the base document)")
            try:
                engine.add_data(data)
            except OpaError as e:
                raise UsageError(f"--data {data_file}: {e}") from None
        # add_policy only parses; compile every module now (a prepared query compiles them
        # all), so compile errors and data/policy conflicts stop the run here.
        try:
            engine.eval_query("true")
        except OpaError as e:
            raise UsageError(f"cannot compile the policies in {policy_dir}: {e}") from None
    except BaseException:
        engine.close()
        raise
    return engine


def _raw_eval(engine: OpaEngine, fn, text: str, input_json: bytes):
    """Evaluates with pre-encoded input; OpaEngine's API cannot pass a JSON null input
    (None means "no input"). Uses the bindings' internals (pinned version)."""
    with engine._eval_lock:
        envelope = engine._call(fn, text.encode("utf-8"), input_json, 0, 0)
    return envelope.get("result")


def eval_document(engine: OpaEngine, package: str, input_):
    if input_ is _NO_INPUT:
        return engine.eval_document(package)
    if input_ is None:
        rs = _raw_eval(engine, engine._lib.OpaEvalDocument, package, b"null")
        if not rs or not rs[0].get("expressions"):
            raise OpaUndefinedError(f"data.{package}")
        return rs[0]["expressions"][0]["value"]
    return engine.eval_document(package, input_)


def eval_query(engine: OpaEngine, query: str, input_):
    if input_ is _NO_INPUT:
        return engine.eval_query(query)
    if input_ is None:
        rs = _raw_eval(engine, engine._lib.OpaEvalQuery, query, b"null")
        return [r.get("bindings", {}) for r in rs or []]
    return engine.eval_query(query, input_)


def parse_line(line: str):
    """(package, input) or raises ValueError with the reason."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise ValueError(f"invalid_line: not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError("invalid_line: not a JSON object")
    package = obj.get("package")
    if not isinstance(package, str) or not PACKAGE_RE.fullmatch(package):
        raise ValueError(f'invalid_line: "package" must be a dotted Rego path, got {package!r}')
    return package, obj.get("input", _NO_INPUT)


def read_lines():
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]


def run_eval(engine: OpaEngine) -> int:
    out = []
    for line in read_lines():
        try:
            package, input_ = parse_line(line)
            result = {"document": normalise(eval_document(engine, package, input_))}
        except ValueError as e:
            result = {"error": str(e)}
        except OpaUndefinedError:
            result = {"undefined": True}
        except OpaError as e:
            result = {"error": str(e)}
        out.append(canonical(result))
    if out:
        sys.stdout.buffer.write(("\n".join(out) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()
    return 0


def parse_bench(spec: str):
    """("count", n) for "20000", ("seconds", t) for "5s"."""
    s = spec.strip()
    try:
        if s.endswith("s"):
            t = float(s[:-1])
            if not math.isfinite(t) or t <= 0:
                raise ValueError
            return "seconds", t
        n = int(s)
        if n <= 0:
            raise ValueError
        return "count", n
    except ValueError:
        raise UsageError(
            f"--bench {spec!r}: give a decision count (20000) or seconds (5s)"
        ) from None


def percentile(sorted_ns, p):
    """Nearest-rank percentile of sorted nanoseconds, in microseconds."""
    rank = max(1, math.ceil(p / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1000


def run_bench(engine: OpaEngine, spec: str, query_kind: str) -> int:
    mode, amount = parse_bench(spec)
    by_package: dict[str, list] = {}
    for n, line in enumerate(read_lines(), 1):
        try:
            package, input_ = parse_line(line)
        except ValueError as e:
            raise UsageError(f"input line {n}: {e}") from None
        by_package.setdefault(package, []).append(input_)
    if not by_package:
        raise UsageError("--bench: no input lines on stdin")

    for package, inputs in by_package.items():
        if query_kind == "decision":
            query = f"allow := data.{package}.allow; deny := data.{package}.deny"

            def decide(input_, query=query):
                rs = eval_query(engine, query, input_)
                if len(rs) != 1:
                    raise OpaError("bench", f"{query} gave {len(rs)} results, expected 1")
                return rs[0]
        else:

            def decide(input_, package=package):
                return eval_document(engine, package, input_)

        try:
            for i in range(max(len(inputs), 200)):
                decide(inputs[i % len(inputs)])
            latencies = []
            clock = time.perf_counter_ns
            count = len(inputs)
            gc.collect()
            gc.disable()
            try:
                start = clock()
                if mode == "count":
                    for i in range(amount):
                        t0 = clock()
                        decide(inputs[i % count])
                        latencies.append(clock() - t0)
                else:
                    deadline = start + int(amount * 1e9)
                    i = 0
                    while True:
                        t0 = clock()
                        decide(inputs[i % count])
                        t1 = clock()
                        latencies.append(t1 - t0)
                        i += 1
                        if t1 >= deadline:
                            break
                wall_ns = clock() - start
            finally:
                gc.enable()
        except OpaError as e:
            print(f"eval.py: --bench {package}: {e}", file=sys.stderr)
            return 1
        latencies.sort()
        report = {
            "package": package,
            "query": query_kind,
            "decisions": len(latencies),
            "decisions_per_second": round(len(latencies) / (wall_ns / 1e9), 1),
            "p50_us": round(percentile(latencies, 50), 2),
            "p99_us": round(percentile(latencies, 99), 2),
        }
        print(json.dumps(report, separators=(",", ":")), flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Evaluate Rego policies with the real OPA (Go) engine; see the docstring."
    )
    ap.add_argument("--policy-dir", help="folder of *.rego files (*_test.rego are skipped)")
    ap.add_argument("--data", help="JSON object: the whole base data document")
    ap.add_argument(
        "--bench",
        metavar="COUNT_OR_SECONDS",
        help="benchmark: decisions per package (20000) or seconds per package (5s)",
    )
    ap.add_argument(
        "--bench-query",
        choices=("decision", "document"),
        default="decision",
        help="what one benchmarked decision evaluates (default: allow and deny)",
    )
    ap.add_argument("--version", action="store_true", help="print the engine versions")
    args = ap.parse_args(argv)

    if args.version:
        print(f"{DIST} {importlib.metadata.version(DIST)} (OPA {opa_version()}, Go engine)")
        return 0
    if not args.policy_dir:
        ap.print_usage(sys.stderr)
        print("eval.py: --policy-dir is required", file=sys.stderr)
        return 2
    try:
        engine = load_engine(args.policy_dir, args.data)
        with engine:
            if args.bench is not None:
                return run_bench(engine, args.bench, args.bench_query)
            return run_eval(engine)
    except UsageError as e:
        print(f"eval.py: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
