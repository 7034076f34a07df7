"""The API under schemathesis, counted: how many requests, to which operations, with which answers.

    OMP_NUM_THREADS=1 python benchmarks/serve_fuzz.py [--examples 100] [--configs open,keys]

Runs tests/test_serve_fuzz.py (pytest) once per configuration: `open` is the server without keys on
loopback, `keys` the server with API keys bound to 0.0.0.0 (every request carries the key, so it gets
past the key check to validation and the handler). The test logs every request it sends (JEWELGAN_FUZZ_LOG):
the requests schemathesis generates from the OpenAPI schema (its examples, coverage and fuzzing phases;
--examples is the fuzzing phase's count per operation), then the test's own strict-type requests: every
integer and boolean field of every JSON body sent a value that pydantic's lax mode would coerce.

Prints per configuration: the test's exit status, generated requests in all and per operation, the status
histogram, 5xx (the goal: 0; 503 counted apart, it is the server's "busy"), and the strict-type cases: the
generated values that a lax parser would have coerced (found with pydantic in lax mode) and the test's own,
each with its answers (the goal: every one a 4xx). Nothing is asserted here beyond what the test asserts.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

ROOT = Path(__file__).resolve().parents[1]
LAX = {"integer": TypeAdapter(int), "boolean": TypeAdapter(bool)}


def run(config: str, examples: int) -> tuple[int, float, list[dict]]:
    """pytest over tests/test_serve_fuzz.py in one configuration: its exit status, seconds, logged requests."""
    log = Path(tempfile.mkdtemp(prefix="jewelgan-fuzzlog-")) / f"{config}.jsonl"
    env = {**os.environ, "JEWELGAN_FUZZ_EXAMPLES": str(examples), "JEWELGAN_FUZZ_LOG": str(log),
           "JEWELGAN_FUZZ_KEYS": "1" if config == "keys" else "",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pytest", "tests/test_serve_fuzz.py", "-p", "no:cacheprovider", "-q"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        print(res.stdout[-3000:], res.stderr[-3000:], sep="\n")
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return res.returncode, seconds, rows


def field_types() -> dict[str, dict[str, str]]:
    """path -> {field: "integer" | "boolean"} of the JSON bodies, from the app's OpenAPI schema."""
    from jewelgan.serve import ServeSettings, create_app

    spec = create_app(ServeSettings(jobs_dir=Path(tempfile.mkdtemp(prefix="jewelgan-fuzzschema-")))).openapi()
    found = {}
    for path, ops in spec["paths"].items():
        for op in ops.values():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" not in ref:
                continue
            props = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]["properties"]
            for name, prop in props.items():
                kinds = {prop["type"]} if "type" in prop else {t.get("type") for t in prop.get("anyOf", [])}
                for kind in ("integer", "boolean"):
                    if kind in kinds:
                        found.setdefault(path, {})[name] = kind
    return found


def coercible(kind: str, value) -> bool:
    """A value of the wrong JSON type that pydantic's lax mode would still have taken (true for 1, "4" for 4)."""
    if (kind == "integer" and type(value) is int) or (kind == "boolean" and type(value) is bool):
        return False  # the right type
    try:
        LAX[kind].validate_json(json.dumps(value))
        return True
    except (ValidationError, TypeError, ValueError):
        return False


def strict_cases(rows: list[dict], types: dict[str, dict[str, str]]) -> list[tuple[str, str, object, int]]:
    """(path, field, value, status) of each generated JSON body's coercible value."""
    found = []
    for r in rows:
        body = r["body"]
        json_body = isinstance(body, dict) and "json" in (r["media_type"] or "")
        if not r["source"].startswith("schemathesis") or not json_body:
            continue
        for name, kind in types.get(r["path"], {}).items():
            if name in body and coercible(kind, body[name]):
                found.append((r["path"], name, body[name], r["status"]))
    return found


def report(config: str, rc: int, seconds: float, rows: list[dict], types) -> dict:
    generated = [r for r in rows if r["source"].startswith("schemathesis")]
    own = [r for r in rows if r["source"].startswith("strict:")]
    hist = collections.Counter(r["status"] for r in generated)
    per_op = collections.Counter(r["operation"] for r in generated)
    probes = collections.Counter(r["operation"] for r in generated if not r["operation"].startswith(r["method"] + " "))
    phases = collections.Counter(":".join(r["source"].split(":")[1:]) for r in generated)
    fives = [r for r in generated + own if r["status"] >= 500 and r["status"] != 503]
    found = strict_cases(rows, types)
    kinds = collections.Counter(f"{f}={json.dumps(v)[:12]}" for _, f, v, _ in found)
    print(f"\n== {config}: pytest exit {rc}, {seconds:.0f} s")
    print(f"generated requests: {len(generated):,} ({', '.join(f'{k} {v}' for k, v in sorted(phases.items()))})")
    print(f"per operation ({len(per_op)}; 'other methods': the coverage phase's tries of other methods on its path):")
    for op, n in sorted(per_op.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:5d}  {op}" + (f"  (other methods: {probes[op]})" if probes[op] else ""))
    print("status histogram:", ", ".join(f"{s}: {n}" for s, n in sorted(hist.items())))
    print(f"5xx: {len(fives)} (503: {sum(r['status'] == 503 for r in generated + own)})")
    print(f"strict-type values among the generated: {len(found)}, answered "
          f"{dict(collections.Counter(s for *_, s in found))}; e.g. {', '.join(k for k, _ in kinds.most_common(8))}")
    own_statuses = dict(collections.Counter(r["status"] for r in own))
    print(f"strict-type requests of the test: {len(own)}, answered {own_statuses}")
    for r in fives + [r for r in own if not 400 <= r["status"] < 500] + [
            {"path": p, "body": {f: v}, "status": s} for p, f, v, s in found if not 400 <= s < 500]:
        print("  !", r.get("method", "POST"), r["path"], json.dumps(r["body"])[:120], "->", r["status"])
    return {"generated": len(generated), "fives": len(fives), "strict": len(found) + len(own),
            "strict_ok": sum(400 <= s < 500 for *_, s in found) + sum(400 <= r["status"] < 500 for r in own)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100, help="fuzzing-phase requests per operation")
    ap.add_argument("--configs", default="open,keys", help="open (no keys, loopback) and/or keys")
    args = ap.parse_args()
    types = field_types()
    totals = []
    for config in args.configs.split(","):
        rc, seconds, rows = run(config, args.examples)
        totals.append(report(config, rc, seconds, rows, types))
    print(f"\nall: {sum(t['generated'] for t in totals):,} generated requests, "
          f"{sum(t['fives'] for t in totals)} 5xx, strict-type cases {sum(t['strict_ok'] for t in totals)} of "
          f"{sum(t['strict'] for t in totals)} refused with a 4xx")


if __name__ == "__main__":
    main()
