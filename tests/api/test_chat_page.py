"""The chat page as files over HTTP: served at /, its security policy, the framing setting.
What it does in a browser: tests/browser/test_chat_page.py."""

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from rag.settings import Settings
from tests.conftest import make_settings


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="app.js"' in page.text and 'href="style.css"' in page.text
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/no-such-file.js").status_code == 404


def test_the_page_may_be_framed_only_by_itself_by_default(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy and "script-src 'self'" in policy
    assert "content-security-policy" not in client.get("/healthz").headers


def test_framing_origins_come_from_settings(tmp_path, components):
    settings = make_settings(tmp_path, server={
        "frame_ancestors": ["'self'", "https://wiki.example.org"]})  # fmt: skip
    with TestClient(create_app(settings, components)) as client:
        policy = client.get("/?embed=1").headers["content-security-policy"]
    assert policy.endswith("frame-ancestors 'self' https://wiki.example.org")


def test_framing_origins_are_read_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("CARDRAG_SERVER__FRAME_ANCESTORS", "'self', https://*.example.org:8443")
    assert Settings().server.frame_ancestors == ["'self'", "https://*.example.org:8443"]


@pytest.mark.parametrize(
    "sources",
    [["https://a.example; script-src *"], ["https://a.example b.example"], [],
     ["'none'", "'self'"], ["javascript:alert(1)"]],  # fmt: skip
)
def test_framing_origins_that_could_break_the_policy_are_refused(sources):
    with pytest.raises(ValidationError, match="frame_ancestors"):
        Settings(server={"frame_ancestors": sources})
