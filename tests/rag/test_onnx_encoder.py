"""The encoder on onnxruntime: the same vectors as sentence-transformers on torch, an export
that is made once and never half-used, and a serving path without torch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rag import onnx_encoder
from rag.embedding import build_embedder, default_model_path
from rag.errors import ModelNotAvailable
from rag.settings import REPO_ROOT, EmbedderSettings
from tests.conftest import CORPUS

MODELS_DIR = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def torch_embedder():
    return build_embedder(EmbedderSettings(backend="sentence-transformers"), MODELS_DIR)


def card_texts() -> list[str]:
    from rag.cards import all_cards, load_corpus

    return [f"{c.question}\n{c.long_answer}" for c in all_cards(load_corpus(CORPUS))]


def test_onnx_and_torch_give_the_same_vectors(real_embedder, torch_embedder):
    """Cards of every length in one batch (so rows are padded), a text past the 256-token
    truncation, and short queries."""
    assert isinstance(real_embedder, onnx_encoder.OnnxEmbedding)  # the default backend
    texts = [*card_texts()[:40], "dropout", "attention " * 400]
    onnx = np.array(real_embedder.get_text_embedding_batch(texts))
    torch = np.array(torch_embedder.get_text_embedding_batch(texts))
    assert onnx.shape == torch.shape == (len(texts), 384)
    assert (onnx * torch).sum(axis=1).min() > 0.9999
    for query in ("LN vs BN?", "how does RoPE encode positions"):
        assert np.dot(real_embedder.get_query_embedding(query),
                      torch_embedder.get_query_embedding(query)) > 0.9999  # fmt: skip


def test_an_existing_export_is_reused(monkeypatch):
    folder = onnx_encoder.ensure_exported(default_model_path(), MODELS_DIR)

    def no_export(*_):  # pragma: no cover - called only if the test fails
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_encoder, "_export", no_export)
    assert onnx_encoder.ensure_exported(default_model_path(), MODELS_DIR) == folder
    manifest = json.loads((folder / onnx_encoder.MANIFEST_FILE).read_text())
    assert manifest["pooling"] == "mean" and manifest["max_seq_length"] == 256


def test_a_failed_export_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def crash_half_way(model_dir, out, digest):
        (out / onnx_encoder.MODEL_FILE).write_bytes(b"half a model")
        raise RuntimeError("killed")

    monkeypatch.setattr(onnx_encoder, "_export", crash_half_way)
    with pytest.raises(RuntimeError, match="killed"):
        onnx_encoder.ensure_exported(default_model_path(), tmp_path)
    encoders = tmp_path / "encoders"
    assert list(encoders.iterdir()) == []  # neither the target folder nor the staging one


def test_a_model_with_another_pooling_is_a_clear_error(tmp_path):
    model = tmp_path / "odd-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}')
    with pytest.raises(ModelNotAvailable, match="sentence-transformers"):
        onnx_encoder.ensure_exported(model, tmp_path / "models")


def test_serving_with_the_onnx_encoder_never_imports_torch():
    """The export exists (make install made it): building the components, embedding a
    query and creating the app load onnxruntime only."""
    onnx_encoder.ensure_exported(default_model_path(), MODELS_DIR)
    probe = (
        "import sys\n"
        "from rag.settings import Settings\n"
        "from rag.embedding import build_embedder\n"
        "s = Settings()\n"
        "build_embedder(s.embedder, s.models_dir).get_query_embedding('dropout')\n"
        "import api.app, rag.components\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
