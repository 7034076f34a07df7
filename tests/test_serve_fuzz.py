"""Fuzzing the API from its own OpenAPI schema (schemathesis): whatever a client sends, no 5xx.

Each operation gets FUZZ_EXAMPLES generated requests (valid and invalid: schemathesis mixes both);
with the API's operations that is over 1,000 cases. Then every integer and boolean field of every JSON
body gets the values a lax parser would coerce ("4", true, 4.0 for an integer; 1, "true" for a boolean):
each is a 422 naming the field.

Environment (benchmarks/serve_fuzz.py sets them and prints the figures):
  JEWELGAN_FUZZ_EXAMPLES  generated requests per operation (default 100);
  JEWELGAN_FUZZ_KEYS=1    the server has API keys (bound to 0.0.0.0, docs closed); every request carries
                          the key, so it reaches validation and the handler rather than stopping at 401;
  JEWELGAN_FUZZ_LOG=FILE  append one JSON line per request: method, path, status and what was sent."""

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402

from schemathesis.core import NotSet  # noqa: E402

from jewelgan.serve import ServeSettings, create_app  # noqa: E402
from jewelgan.serve.access import add_key  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("JEWELGAN_FUZZ_EXAMPLES", "100"))
FUZZ_KEYS = os.environ.get("JEWELGAN_FUZZ_KEYS", "") == "1"
FUZZ_LOG = os.environ.get("JEWELGAN_FUZZ_LOG")


def make_app():
    root = Path(tempfile.mkdtemp(prefix="jewelgan-fuzz-"))
    keyed, auth = {}, {}
    if FUZZ_KEYS:
        # a public bind with keys; a rate limit the fuzzer never reaches, so its requests get past the key check
        keyed = dict(keys_file=root / "keys.txt", host="0.0.0.0", rate=1e6, burst=1_000_000)
        auth = {"Authorization": f"Bearer {add_key(root / 'keys.txt', 'fuzz')}"}
    # small caps keep each generated request cheap; the checks are the same as with the defaults
    app = create_app(ServeSettings(jobs_dir=root / "jobs", max_n=4, max_size=96, max_job_n=8, edit_steps=(2, 1),
                                   **keyed))
    return app.state.asgi, auth


ASGI, AUTH = make_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", ASGI, headers=AUTH)


def log(operation: str, method: str, path: str, status: int, source: str, body=None,
        media_type: str | None = None) -> None:
    if not FUZZ_LOG:
        return
    if media_type and "json" not in media_type:  # a form or raw bytes: its fields, not its bytes
        body = sorted(body) if isinstance(body, dict) else type(body).__name__
    line = {"keys": FUZZ_KEYS, "source": source, "operation": operation, "method": method, "path": path,
            "status": status, "media_type": media_type, "body": body}
    with open(FUZZ_LOG, "a") as f:
        f.write(json.dumps(line, default=repr) + "\n")


def check(method: str, path: str, response) -> None:
    assert response.status_code < 500 or response.status_code == 503, (
        f"{method} {path} -> {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        assert "error" in response.json()  # every refusal is the JSON error body


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_makes_a_server_error(case):
    response = case.call(headers=AUTH)
    source = "schemathesis"
    if case.meta is not None:  # the phase (examples, coverage, fuzzing) and whether it meant to be valid
        source += f":{case.meta.phase.name.value}:{case.meta.generation.mode.value}"
    body = None if case.body is NotSet else case.body
    # the coverage phase also sends other methods to an operation's path (405): the method sent is logged too
    log(case.operation.label, case.method.upper(), case.operation.path, response.status_code, source, body,
        case.media_type)
    check(case.method.upper(), case.formatted_path, response)


# ---------------------------------------------------------------------------- strict types, from the schema
def json_operations() -> list[tuple[str, str, dict]]:
    """(method, path, body schema) of every operation with a JSON body, references resolved."""
    spec = schema.raw_schema
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                found.append((method.upper(), path, resolve(spec, body)))
    return found


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def types_of(prop: dict) -> set[str]:
    return {prop["type"]} if "type" in prop else {t.get("type") for t in prop.get("anyOf", [])}


def valid(prop: dict):
    kinds = types_of(prop)
    if "integer" in kinds:
        return int(max(prop.get("minimum", 1), 1))
    return {"string": "metal", "boolean": False, "number": 1.0}.get(next(iter(kinds - {"null"})), None)


COERCIBLE = {  # what pydantic's lax mode would have accepted, from a valid value v
    "integer": (lambda v: str(v), lambda v: True, lambda v: False, lambda v: float(v)),
    "boolean": (lambda v: 1, lambda v: 0, lambda v: "true", lambda v: "false"),
}


def strict_cases() -> list[tuple[str, str, dict, str]]:
    cases = []
    for method, path, body_schema in json_operations():
        props = body_schema["properties"]
        base = {name: valid(props[name]) for name in body_schema.get("required", [])}
        for name, prop in props.items():
            kind = next((k for k in ("integer", "boolean") if k in types_of(prop)), None)
            if kind is None:
                continue
            for make in COERCIBLE[kind]:
                cases.append((method, path, {**base, name: make(valid(prop))}, name))
    return cases


STRICT = strict_cases()


def test_the_schema_has_the_integer_and_boolean_fields_we_mean():
    fields = {(path, field) for _, path, _, field in STRICT}
    assert {("/v1/generate", "n"), ("/v1/generate", "seed"), ("/v1/generate", "transparent"),
            ("/v1/interpolate", "steps"), ("/v1/jobs", "n"), ("/v1/jobs", "seed")} <= fields
    assert len(STRICT) >= 4 * 20  # 4 coercible values for each of the integer and boolean fields of 4 bodies


@pytest.mark.parametrize("method, path, body, field", STRICT,
                         ids=[f"{p}-{f}-{json.dumps(b[f])}" for _, p, b, f in STRICT])
def test_no_integer_or_boolean_field_takes_a_value_a_lax_parser_would_coerce(method, path, body, field):
    client = TestClient(ASGI)
    res = client.request(method, path, json=body, headers=AUTH)
    log(f"{method} {path}", method, path, res.status_code, f"strict:{field}", body, "application/json")
    check(method, path, res)
    assert res.status_code == 422 and res.json()["field"] == field, (body, res.text)
