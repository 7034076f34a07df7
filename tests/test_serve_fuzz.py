"""Fuzzing the API from its own OpenAPI schema (schemathesis): whatever a client sends, no 5xx.

Each operation gets FUZZ_EXAMPLES generated requests (valid and invalid: schemathesis mixes both);
with the API's operations that is over 1,000 cases. JEWELGAN_FUZZ_EXAMPLES raises or lowers it."""

import os

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")

from jewelgan.serve import ServeSettings, create_app  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("JEWELGAN_FUZZ_EXAMPLES", "100"))
JOBS = None


def make_app():
    import tempfile

    # small caps keep each generated request cheap; the checks are the same as with the defaults
    return create_app(ServeSettings(jobs_dir=tempfile.mkdtemp(prefix="jewelgan-fuzz-"), max_n=4, max_size=96,
                                    max_job_n=8, edit_steps=(2, 1))).state.asgi


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_makes_a_server_error(case):
    response = case.call()
    assert response.status_code < 500 or response.status_code == 503, (
        f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        assert "error" in response.json()  # every refusal is the JSON error body
