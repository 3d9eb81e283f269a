"""Fuzzing: schemathesis generates requests from the app's own OpenAPI schema, valid and
invalid, and runs them in-process against create_app (fake LLM, hashing embedder).

Every response must be free of server errors and conform to the schema. At least
MIN_CASES cases run; the summary line reports how many, per operation and status.
"""

from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from rag.components import build_indexed
from rag.testing import FakeLLM, HashingEmbedding
from tests.conftest import make_settings

MIN_CASES = 1000
MAX_EXAMPLES = 1100  # hypothesis may discard a few; the count below is what was sent


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app_settings = make_settings(
        tmp_path_factory.mktemp("fuzz"), security={"rate_limit_enabled": False}
    )
    components = build_indexed(app_settings, llm=FakeLLM(), embedder=HashingEmbedding())
    app = create_app(app_settings, components)
    with TestClient(app):  # runs the lifespan once, so the schema can be fetched
        yield app


def test_generated_requests_cause_no_server_error_and_no_schema_violation(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    strategies = [
        operation.as_strategy(generation_mode=mode)
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    seen: Counter = Counter()

    @given(case=st.one_of(strategies))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case):
        response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
        seen[(case.operation.label, response.status_code)] += 1

    run()
    total = sum(seen.values())
    summary = ", ".join(f"{op} {status}: {n}" for (op, status), n in sorted(seen.items()))
    print(f"\nschemathesis: {total} cases over {len(operations)} operations; {summary}")
    assert total >= MIN_CASES
    assert not any(status >= 500 for (_, status) in seen)
