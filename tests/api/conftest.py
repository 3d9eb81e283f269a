"""API fixtures: clients over the shared fake components with other HTTP settings."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"


@pytest.fixture
def client_with(tmp_path, components) -> Iterator[Callable[..., TestClient]]:
    """client_with(api_keys=..., security={...}, client=("1.2.3.4", 1)) -> a started TestClient."""
    with ExitStack() as stack:

        def build(*, client: tuple[str, int] = ("testclient", 50000), **overrides) -> TestClient:
            app = create_app(make_settings(tmp_path, **overrides), components)
            return stack.enter_context(TestClient(app, client=client))

        yield build


@pytest.fixture
def keyed(client_with) -> TestClient:
    """A client of an app that requires API keys (and sends none by itself)."""
    return client_with(api_keys=f"{KEY},{OTHER_KEY}")
