"""``create(source)``: the one way to get a :class:`HeadModel`, whatever file it comes from."""

from __future__ import annotations

from pathlib import Path

from .errors import HeadModelError
from .head_model import HeadModel, load_head_file

VENDOR_DIR = Path(__file__).resolve().parents[1] / "vendor_models"
DEFAULT_HEAD_PATH = VENDOR_DIR / "default_head" / "default_head.safetensors"
DEFAULT_HEAD = "default"


def create(source: str | Path = DEFAULT_HEAD, landmark_embedding: str | Path | None = None) -> HeadModel:
    """``"default"`` → the shipped CC0 head; ``*.safetensors`` → a LatticeTalk head file;
    ``*.pkl`` / ``*.npz`` → a FLAME 2020/2023 model (with FLAME's MediaPipe embedding if given)."""
    if str(source) == DEFAULT_HEAD:
        return load_head_file(DEFAULT_HEAD_PATH)
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return load_head_file(path)
    if suffix in (".pkl", ".npz"):
        from .flame_io import load_flame

        return load_flame(path, landmark_embedding_path=landmark_embedding)
    raise HeadModelError(
        f"{path}: unknown head file type {suffix!r}; use 'default', a FLAME model (.pkl/.npz) "
        "or a LatticeTalk head (.safetensors)"
    )
