"""Import and first use need no network: HF hub, tiktoken, nltk, Chroma's ONNX model and
telemetry would all show up here as blocked connection or name-resolution attempts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.offline import OFFLINE_SWITCHES
from rag.settings import REPO_ROOT
from tests.conftest import shipped_card_count

PROBE = Path(__file__).with_name("offline_probe.py")


def run_probe(tmp_path: Path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    clean.update(env, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path / "data")],
        capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_ingest_search_ask_need_no_network(tmp_path):
    """The offline switches are not in this environment: the code must set them itself."""
    report = run_probe(tmp_path, CARDRAG_LLM__BACKEND="fake")
    assert report["attempts"] == []
    assert report["added"] == shipped_card_count() and report["top"].startswith("dropout")
    assert report["citations"]


def test_exporting_the_encoder_on_first_use_needs_no_network(tmp_path):
    """A models folder without the ONNX export: the first use exports it from the installed
    weights (torch, transformers and onnx loaded, all with the network blocked)."""
    report = run_probe(tmp_path, CARDRAG_LLM__BACKEND="fake",
                       CARDRAG_MODELS_DIR=str(tmp_path / "models"))  # fmt: skip
    assert report["attempts"] == []
    assert report["top"].startswith("dropout")
    assert list((tmp_path / "models" / "encoders").glob("*/model.onnx"))


@pytest.mark.slow
def test_the_real_bundled_llm_answers_offline(tmp_path):
    report = run_probe(
        tmp_path,
        CARDRAG_LLM__BACKEND="bundled",
        CARDRAG_LLM__MODEL="qwen2.5-coder-0.5b-instruct",
        CARDRAG_MODELS_DIR=str(REPO_ROOT / "models"),
    )
    assert report["attempts"] == []
    assert not report["refused"]
    assert "dropout-training-vs-inference" in report["citations"]
