"""``create(source)``: the one way to get a :class:`HeadModel`, whatever file it comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HeadModelError
from .head_model import HEAD_FILE_FORMAT, HeadModel, LandmarkEmbedding, load_head_file

VENDOR_DIR = Path(__file__).resolve().parents[1] / "vendor_models"
DEFAULT_HEAD_PATH = VENDOR_DIR / "default_head" / "default_head.npz"
DEFAULT_HEAD = "default"
EMBEDDING_FILE_NAME = "mediapipe_landmark_embedding.npz"  # the name FLAME's download gives it
EMBEDDING_URL = "https://flame.is.tue.mpg.de"


def create(source: str | Path = DEFAULT_HEAD,
           landmark_embedding: str | Path | LandmarkEmbedding | None = None) -> HeadModel:
    """``"default"`` → the shipped CC0 head; a LatticeTalk head ``.npz``; a FLAME 2020/2023 model
    (``.pkl``, or ``.npz`` with FLAME's keys).

    A FLAME model's MediaPipe landmark embedding: ``landmark_embedding`` (a file, e.g. ``--embedding`` or the
    preference, or an embedding already read, e.g. the one stored with a head in a scene), else
    ``mediapipe_landmark_embedding.npz`` beside the model file, else none (see :func:`require_landmarks`)."""
    if str(source) == DEFAULT_HEAD:
        return load_head_file(DEFAULT_HEAD_PATH)
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".npz" and _is_lattice_talk_head(path):
        return load_head_file(path)
    if suffix in (".pkl", ".npz"):
        from .flame_io import load_flame

        if isinstance(landmark_embedding, LandmarkEmbedding):
            return load_flame(path).with_landmarks(landmark_embedding)
        beside = path.with_name(EMBEDDING_FILE_NAME)
        if landmark_embedding is None and beside.is_file():
            landmark_embedding = beside
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


def require_landmarks(head: HeadModel) -> None:
    """Raise, naming the file to get and where to put it, when ``head`` has no MediaPipe landmark embedding: motion
    reaches a head through those points (generate, apply or export a clip made for another head, convert)."""
    if head.landmarks is not None:
        return
    model = Path(head.info.get("source", head.head_id))
    raise HeadModelError(
        f"{model}: this FLAME head has no MediaPipe landmark embedding, which carrying a take onto it needs. "
        f"Download {EMBEDDING_FILE_NAME} with FLAME from {EMBEDDING_URL} and put it beside {model.name} "
        f"(in {model.parent}), or give it: --embedding on the command line, the Landmark embedding field of "
        "Add Head › FLAME, or Preferences › LatticeTalk › Landmark embedding"
    )
