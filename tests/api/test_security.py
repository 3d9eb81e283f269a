"""API keys and CORS: who may call, from where, and that keys never leak."""

import logging

import pytest
from pydantic import ValidationError

from api.security import KeyRing
from rag.settings import Settings
from tests.api.conftest import KEY, OTHER_KEY

PROTECTED = [
    ("GET", "/v1/search?q=dropout"),
    ("POST", "/v1/ask"),
    ("GET", "/v1/cards/dropout"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/no-such-route"),
]


def test_keys_are_off_by_default(client):
    assert client.get("/v1/search", params={"q": "dropout"}).status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_every_route_but_healthz_needs_a_key(keyed, method, url):
    response = keyed.request(method, url, json={"question": "What is dropout?"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert keyed.get("/healthz").status_code == 200


def test_bearer_and_x_api_key_both_work_for_every_key(keyed):
    ways = [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY},
            {"Authorization": f"bearer {OTHER_KEY}"}, {"X-API-Key": OTHER_KEY}]  # fmt: skip
    for headers in ways:
        assert keyed.get("/v1/cards/dropout", headers=headers).status_code == 200
    answered = keyed.post("/v1/ask", json={"question": "What is dropout?"},
                          headers={"X-API-Key": KEY})  # fmt: skip
    assert answered.status_code == 200
    assert keyed.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_missing_and_wrong_keys_get_the_same_401(keyed):
    attempts = [
        {},
        {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        {"Authorization": f"Bearer {KEY[:-1]}"},  # a prefix of a real key
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
        {"X-API-Key": KEY.upper()},
    ]
    responses = [keyed.get("/v1/search", params={"q": "x"}, headers=h) for h in attempts]
    shapes = {
        (r.status_code, r.text, tuple(sorted((k, v) for k, v in r.headers.items()
                                             if k != "x-request-id")))  # fmt: skip
        for r in responses
    }
    assert len(shapes) == 1
    assert responses[0].status_code == 401


def test_the_openapi_schema_declares_the_keys_when_keys_are_set(keyed, client):
    """So /docs has an Authorize button; without keys nothing is required, so nothing is
    declared (schema-driven clients and tools would otherwise send or expect a key)."""
    schema = keyed.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearerKey"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() \
        <= schemes["headerKey"].items()  # fmt: skip
    operations = {(method, path): operation for path, item in schema["paths"].items()
                  for method, operation in item.items()}  # fmt: skip
    assert len(operations) > 15
    for (method, path), operation in operations.items():
        expected = None if path == "/healthz" else [{"bearerKey": []}, {"headerKey": []}]
        assert operation.get("security") == expected, (method, path)
    # What the schema promises is what the middleware does.
    assert keyed.get("/v1/cards/dropout").status_code == 401
    assert keyed.get("/v1/cards/dropout", headers={"X-API-Key": KEY}).status_code == 200

    unkeyed = client.get("/openapi.json").json()
    assert "securitySchemes" not in unkeyed.get("components", {})
    assert not any("security" in operation for item in unkeyed["paths"].values()
                   for operation in item.values())  # fmt: skip


def test_keys_never_appear_in_logs(keyed, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-fedcba9876543210"
    keyed.get("/v1/search", params={"q": "dropout"}, headers={"Authorization": f"Bearer {KEY}"})
    keyed.get("/v1/search", params={"q": "dropout"}, headers={"X-API-Key": wrong})
    keyed.post("/v1/ask", json={"question": "What is dropout?"}, headers={"X-API-Key": KEY})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert '"caller": "key-1"' in logged  # the label is logged ...
    assert KEY not in logged and wrong not in logged and OTHER_KEY not in logged  # ... never a key


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/v1/models/cardrag"),
])  # fmt: skip
def test_the_chat_routes_send_their_401_in_openai_shape(keyed, method, path):
    response = keyed.request(method, path, json={"model": "cardrag", "messages": []})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and "API key" in error["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "detail" in keyed.get("/v1/models-not").json()  # other paths keep {"detail"}


def test_settings_never_show_keys(monkeypatch):
    monkeypatch.setenv("CARDRAG_API_KEYS", f"{KEY}, {OTHER_KEY} ,")
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == [KEY, OTHER_KEY]
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())


def test_keyring_identifies_keys_by_label_only():
    ring = KeyRing(Settings(api_keys=[KEY, OTHER_KEY]).api_keys)
    assert ring.enabled
    assert ring.identify(KEY) == "key-1" and ring.identify(OTHER_KEY) == "key-2"
    assert ring.identify(KEY[:-1]) is None and ring.identify("") is None
    assert not KeyRing([]).enabled


def test_no_cors_by_default(client):
    simple = client.get("/v1/cards/dropout", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options("/v1/ask", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins_without_credentials(client_with):
    client = client_with(api_keys=KEY, security={"cors_origins": "https://notes.example.org"})
    preflight = client.options("/v1/ask", headers={
        "Origin": "https://notes.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})  # fmt: skip
    assert preflight.status_code == 200  # a preflight carries no key, and needs none
    assert preflight.headers["access-control-allow-origin"] == "https://notes.example.org"
    assert "access-control-allow-credentials" not in preflight.headers
    allowed = client.get("/v1/cards/dropout", headers={
        "Origin": "https://notes.example.org", "X-API-Key": KEY})  # fmt: skip
    assert allowed.headers["access-control-allow-origin"] == "https://notes.example.org"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    other = client.get("/v1/cards/dropout", headers={
        "Origin": "https://evil.example", "X-API-Key": KEY})  # fmt: skip
    assert "access-control-allow-origin" not in other.headers


def test_cors_preflight_allows_the_headers_openai_sdks_send(client_with):
    """The openai SDKs add X-Stainless-* headers to every request; a browser front end on an
    allowed origin must get past the preflight with them."""
    client = client_with(security={"cors_origins": "https://notes.example.org"})
    preflight = client.options("/v1/chat/completions", headers={
        "Origin": "https://notes.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os, "
                                          "x-stainless-lang, x-stainless-retry-count"})  # fmt: skip
    assert preflight.status_code == 200, preflight.text


def test_cors_preflight_allows_every_method_the_api_routes_use(client_with):
    """A front end on an allowed origin may remove a deck (DELETE /v1/decks/{name})."""
    client = client_with(security={"cors_origins": "https://notes.example.org"})
    paths = client.get("/openapi.json").json()["paths"]
    routed = {method.upper() for operations in paths.values() for method in operations}
    assert "DELETE" in routed
    for method in sorted(routed):
        headers = {"Origin": "https://notes.example.org", "Access-Control-Request-Method": method}
        preflight = client.options("/v1/decks/notes", headers=headers)
        assert preflight.status_code == 200, method
        assert method in preflight.headers["access-control-allow-methods"]


@pytest.mark.parametrize("origins", ["*", "notes.example.org", "ftp://x.org"])
def test_cors_origins_must_be_explicit(origins):
    with pytest.raises(ValidationError, match="explicit"):
        Settings(security={"cors_origins": origins})
