"""Fuzz the HTTP API of `lookalike serve` from its own OpenAPI schema with schemathesis: for
every operation, requests built from the schema (valid ones, and invalid ones: wrong types,
numbers out of range, missing fields) go over real HTTP to uvicorn on 127.0.0.1, serving a
real index of real pictures. Every answer must be in time, never a 5xx, and conform to the
schema (status code documented, body of the documented shape, content type as declared).

The run here is bounded (FUZZ_EXAMPLES per operation and phase) to stay quick. A longer
one, e.g. 500 examples per operation:

    LOOKALIKE_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest -q tests/integration/test_fuzz_api.py

or with the schemathesis command against a running server (`lookalike serve` elsewhere):

    .venv/bin/schemathesis run http://127.0.0.1:8765/openapi.json --checks all \\
        --max-examples 500 --request-timeout 30
"""

from __future__ import annotations

import os

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
schemathesis = pytest.importorskip("schemathesis")

from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from lookalike.service.app import create_app  # noqa: E402

from .serving import build_review, running  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("LOOKALIKE_FUZZ_EXAMPLES", "20"))
REQUEST_TIMEOUT_S = 20  # a hang is a failure, not a stuck test run


def _schema():
    """The app's own schema (it does not depend on the index: no server needed to read it),
    with the bounded generation of this run."""
    spec = create_app("/nonexistent/lookalike-fuzz/index.db").openapi()
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.config.generation.update(max_examples=FUZZ_EXAMPLES, deterministic=True)
    loaded.config.checks.max_response_time.limit = REQUEST_TIMEOUT_S / 2
    return loaded


schema = _schema()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    review = build_review(tmp_path_factory.mktemp("fuzz") / "photos")
    with running(create_app(review.index, max_upload_bytes=1 << 20,
                            max_pixels=4_000_000)) as url:
        yield url


def judged_by_the_server(response) -> bool:
    """A refusal in words (`{"detail": "..."}`) from the service's own checks, of what the
    schema cannot say: a method name it does not know or the index lacks (400), an upload
    that is not a picture (415) or too large (413), a folder that is not one of the index's
    or a not-duplicate decision on one content (422). FastAPI's own 422, a list of the
    parameters that do not fit the schema, is not one: for a request the schema allows,
    that is a bug of the schema."""
    if response.status_code not in (400, 413, 415, 422):
        return False
    try:
        return isinstance(response.json().get("detail"), str)
    except ValueError:
        return False


@schema.parametrize()
def test_the_api_answers_every_request_as_its_schema_says(case, server):
    response = case.call(base_url=server, timeout=REQUEST_TIMEOUT_S)
    excluded = [positive_data_acceptance] if judged_by_the_server(response) else []
    case.validate_response(response, excluded_checks=excluded)


# --- what the fuzzing found, each pinned ---------------------------------------------------------

def test_a_422_may_be_fastapis_list_and_the_schema_says_so(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    answer = spec["paths"]["/files/{file_id}"]["get"]["responses"]["422"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/InvalidOut")
    kinds = {k.get("type") for k in spec["components"]["schemas"]["InvalidOut"]["properties"][
        "detail"]["anyOf"]}
    assert kinds == {"string", "array"}
    reply = httpx.get(f"{server}/files/0")
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["path", "file_id"]


def test_the_upload_body_is_required_and_its_json_form_needs_a_path(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    for route in ("/index", "/query"):
        body = spec["paths"][route]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["required"] == ["path"]
    reply = httpx.post(f"{server}/index", json={})
    assert reply.status_code == 422 and "path" in reply.json()["detail"]


def test_bodies_take_json_types_only_and_no_unknown_fields(server):
    """`"execute": "yes"` was read as true by pydantic's lax mode, and a misspelt field was
    dropped without a word (a silent dry run)."""
    for body in ({"plan_id": "x", "execute": "yes"}, {"plan_id": "x", "execute": 1},
                 {"plan_id": "x", "excute": True}):
        reply = httpx.post(f"{server}/apply", json=body)
        assert reply.status_code == 422, (body, reply.text)
    assert httpx.post(f"{server}/plan", json={"use_marks": 0}).status_code == 422
    for ids in (["1"], [True], [1.5]):
        reply = httpx.post(f"{server}/decisions", json={"decision": "keep", "file_ids": ids})
        assert reply.status_code == 422, (ids, reply.text)
    # JSON Schema's integer: 7.0 is the number 7 (a 404 here: no file 7000 in the index)
    reply = httpx.post(f"{server}/decisions", json={"decision": "keep", "file_ids": [7000.0]})
    assert reply.status_code == 404 and "7000" in reply.json()["detail"]


def test_a_method_not_allowed_names_every_method_of_the_path(server):
    for method in ("PUT", "DELETE", "PATCH"):
        reply = httpx.request(method, f"{server}/decisions")
        assert reply.status_code == 405
        assert reply.headers["allow"] == "GET, POST", reply.headers
    assert httpx.request("DELETE", f"{server}/groups").headers["allow"] == "GET"
    assert httpx.request("DELETE", f"{server}/files/3/content").headers["allow"] == "GET"


def test_filters_are_described_as_they_are_checked(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    where, = [p for p in spec["paths"]["/groups"]["get"]["parameters"] if p["name"] == "where"]
    assert where["schema"]["maxItems"] == 20 and where["schema"]["items"]["pattern"]
    for bad in ("", "key", ":value", 'a"b:c', "a\\b=c", "k\x01:v"):
        reply = httpx.get(f"{server}/groups", params={"where": bad})
        assert reply.status_code == 422, (bad, reply.text)
    for good in ("category:tops", "shop=a", "a=b:c", "k:"):
        reply = httpx.get(f"{server}/groups", params={"where": good})
        assert reply.status_code == 200, (good, reply.text)
