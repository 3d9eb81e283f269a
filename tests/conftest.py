"""Shared fixtures. Most tests run on the fakes (rag.testing); a few use the real models."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from evals.external import THEORY_MD, shared_dir  # noqa: F401 - THEORY_MD is re-exported to tests
from rag.cards import all_cards, load_corpus
from rag.components import Components, build_indexed
from rag.embedding import build_embedder
from rag.settings import REPO_ROOT, EmbedderSettings, Settings
from rag.testing import FakeLLM, HashingEmbedding
from tests.live import serve_in_thread

CORPUS = REPO_ROOT / "corpus"


SHARED_SEED = shared_dir() / "seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kill-reps", type=int, default=12,
        help="How many times the crash-safety test kills an ingest (default 12; about 5 s "
        "each here, so raise --timeout for large counts).",
    )  # fmt: skip


def shipped_card_count() -> int:
    """Cards in corpus/, read from the decks so tests follow the corpus as it grows."""
    return len(all_cards(load_corpus(CORPUS)))


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base = {
        "data_dir": tmp_path / "data",
        "corpus_dir": CORPUS,
        "models_dir": REPO_ROOT / "models",
        "embedder": {"backend": "hashing"},
        "llm": {"backend": "fake", "preload": False},
        # The hashing embedder's cosines are lower than a real encoder's.
        "retrieval": {"answer_threshold": 0.2, "min_support": 0.1},
    }
    return Settings(**{**base, **overrides})


# Chroma modes. Tests marked `both_chroma_modes` run twice: on the embedded database and
# on a Chroma server (`chroma run`), the deployment with several API processes.
CHROMA_MODES = ("embedded", "server")
# CI (.ci/run) starts one server for the whole run and names it here; otherwise the first
# test that needs one starts it. Not a CARDRAG_CHROMA__ variable on purpose: Settings
# would read that one and move every other test onto the server too.
TEST_CHROMA_URL_VARIABLE = "CARDRAG_TEST_CHROMA_URL"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("both_chroma_modes")
    if marked and "chroma_mode" in metafunc.fixturenames:
        metafunc.parametrize("chroma_mode", CHROMA_MODES, indirect=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_chroma(url: str, process: subprocess.Popen | None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"chroma run exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"no Chroma server answered at {url} within {seconds:.0f} s")


@pytest.fixture(scope="session")
def chroma_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chroma server on loopback: the one CI started, or one started for this session."""
    given = os.environ.get(TEST_CHROMA_URL_VARIABLE)
    if given:
        wait_for_chroma(given, None)
        yield given
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    chroma = Path(sys.executable).with_name("chroma")  # installed by the chromadb package
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma-server")),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_chroma(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def chroma_mode(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "embedded")


@pytest.fixture
def chroma_settings(request: pytest.FixtureRequest, chroma_mode: str) -> dict[str, str]:
    """The `chroma` settings group for this mode. On the shared server every test gets a
    collection of its own, as it gets a data directory of its own in embedded mode."""
    if chroma_mode == "embedded":
        return {}
    url = request.getfixturevalue("chroma_server_url")
    return {"url": url, "collection": f"test-{uuid.uuid4().hex[:16]}"}


@pytest.fixture
def settings(tmp_path: Path, chroma_settings: dict[str, str]) -> Settings:
    return make_settings(tmp_path, chroma=chroma_settings)


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture(scope="session")
def indexed_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the shipped corpus ingested (hashing embedder), built once:
    the template of every test's own index below."""
    settings = make_settings(tmp_path_factory.mktemp("indexed-template"))
    build_indexed(settings, llm=FakeLLM(), embedder=HashingEmbedding())
    return settings.data_dir


@pytest.fixture
def components(settings: Settings, fake_llm: FakeLLM, indexed_data_dir: Path) -> Components:
    """Fake LLM + hashing embedder over the shipped corpus, already ingested.

    On the embedded database, the test's data directory starts as a copy of the template
    (a 5 MB copy instead of embedding and writing 127 cards: 0.17 s instead of 0.55 s, in
    some 300 tests); build_indexed's sync then still checks it against the corpus, so a
    difference would be synced as in any other run. A server's collections are the
    server's, so there every test ingests its own."""
    if not settings.chroma.url and not settings.data_dir.exists():
        shutil.copytree(indexed_data_dir, settings.data_dir)
    return build_indexed(settings, llm=fake_llm, embedder=HashingEmbedding())


@pytest.fixture
def client(settings: Settings, components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(settings, components)) as test_client:
        yield test_client


@pytest.fixture
def live_server(settings: Settings, components: Components) -> Iterator[str]:
    """The app on a real server (fake LLM, hashing embedder): yields its base URL."""
    with serve_in_thread(create_app(settings, components)) as base_url:
        yield base_url


# Real encoder (all-MiniLM-L6-v2) and a real Chroma index on disk, built once per session.
@pytest.fixture(scope="session")
def real_embedder():
    return build_embedder(EmbedderSettings(), Settings().models_dir)


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("real") / "data",
        corpus_dir=CORPUS,
        llm={"backend": "fake", "preload": False},
    )


@pytest.fixture(scope="session")
def real_components(real_settings, real_embedder) -> Components:
    """Real encoder + Chroma over the shipped corpus; the LLM is a fake (see tests/slow)."""
    return build_indexed(real_settings, llm=FakeLLM(), embedder=real_embedder)
