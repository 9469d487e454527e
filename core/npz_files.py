"""Compressed ``.npz`` files written whole or not at all: into a hidden temporary beside the target, then renamed over
it, so a reader (another worker, a resumed run) never sees half a file and a failed write leaves the old one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_npz_atomic(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """``np.savez_compressed(path, **arrays)``, atomically; the folder is made if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
