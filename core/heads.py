"""``create(source)``: the one way to get a :class:`HeadModel`, whatever file it comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HeadModelError
from .head_model import HEAD_FILE_FORMAT, HeadModel, load_head_file

VENDOR_DIR = Path(__file__).resolve().parents[1] / "vendor_models"
DEFAULT_HEAD_PATH = VENDOR_DIR / "default_head" / "default_head.npz"
DEFAULT_HEAD = "default"


def create(source: str | Path = DEFAULT_HEAD, landmark_embedding: str | Path | None = None) -> HeadModel:
    """``"default"`` → the shipped CC0 head; a LatticeTalk head ``.npz``; a FLAME 2020/2023 model
    (``.pkl``, or ``.npz`` with FLAME's keys) with FLAME's MediaPipe embedding if given."""
    if str(source) == DEFAULT_HEAD:
        return load_head_file(DEFAULT_HEAD_PATH)
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".npz" and _is_lattice_talk_head(path):
        return load_head_file(path)
    if suffix in (".pkl", ".npz"):
        from .flame_io import load_flame

        return load_flame(path, landmark_embedding_path=landmark_embedding)
    raise HeadModelError(
        f"{path}: unknown head file type {suffix!r}; use 'default', a FLAME model (.pkl/.npz) "
        "or a LatticeTalk head (.npz)"
    )


def _is_lattice_talk_head(path: Path) -> bool:
    """A LatticeTalk head npz carries our metadata entry; FLAME's npz exports carry FLAME's keys."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            return "metadata" in npz.files and HEAD_FILE_FORMAT in str(npz["metadata"])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False  # let the FLAME loader report what is wrong with the file
