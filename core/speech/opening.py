"""The mouth-opening head: how far the lips part, heard from the sound by a network trained on real talking faces.

The decoder's mouth learnt mostly from synthetic voices; on real speakers it never met, its opening follows the
real lips at r ≈ 0.4 (in-the-wild dev clips), too weak for the A/V offset estimate to trust on clips of a few
seconds. The head reads the states of the phonetic encoder (:mod:`.phonetic_encoder`, Whisper's first layers, which
carry English phonetics learnt from 680,000 hours of real speech) and is trained on real talking faces (``data
real``) to give the default head's mouth opening (inner-lip gap over the eye-corner distance, ``lip_geometry``)
that reproduces the tracked speaker — trained on its correlation with it, so only the shape in time counts, not the
scale (``opening_train``). Its opening is the offset estimate's evidence (``core.motion.fusion``), and where its
config gives a ``jaw_weight`` the take's jaw follows it that far (:func:`guide_jaw`): the decoder's mouth shapes stay,
the head says when the mouth opens.

A speech model folder may hold one (``opening.safetensors`` + ``opening.json``, which names the encoder folder it
reads, as the detector's config does); without it the offset reads the decoder's mouth, as before."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .frame_head import FrameHead, head_sizes, run_head
from .model import OPENING_CONFIG, OPENING_FILE, load_weights

FIX = "copy the model folder again or train the head with 'python -m lattice_talk speech train-opening'"


class MouthOpeningHead(FrameHead):
    """(B, T50, F) phonetic encoder states → (B, T) mouth opening at ``n_frames`` output frames (in no fixed scale)."""


def has_opening_head(folder: str | Path) -> bool:
    return (Path(folder) / OPENING_FILE).is_file()


def load_opening_head(folder: str | Path) -> tuple[MouthOpeningHead, dict]:
    """The head in a speech model folder (fp16 on disk, fp32 in memory) and its checked config."""
    from ..errors import LatticeTalkError
    from ..validate import MAX_CONFIG_BYTES, number, read_json
    from .phonetic_encoder import PHONETIC_FEATURES

    path = Path(folder) / OPENING_CONFIG
    config = read_json(path, "mouth-opening head config", MAX_CONFIG_BYTES, FIX)
    sizes = head_sizes(config, path, FIX)
    config["jaw_weight"] = number(config.get("jaw_weight", 0.0), f"{path}: jaw_weight", 0.0, 1.0, FIX)
    if config.get("features") != PHONETIC_FEATURES:
        raise LatticeTalkError(f"{path}: the head must read \"features\": {PHONETIC_FEATURES!r}; {FIX}")
    return load_weights(MouthOpeningHead(**sizes), Path(folder) / OPENING_FILE, OPENING_CONFIG, FIX), config


@dataclass(eq=False)
class FolderOpeningHead:
    """A model folder's mouth-opening head and ``features`` (audio → the phonetic encoder's states it reads)."""

    head: MouthOpeningHead
    features: Callable[[np.ndarray], np.ndarray]
    encoder: str  # the phonetic encoder's folder inside the model folder
    sha256: str  # of the head's weights: a take's offset names the exact weights whose evidence placed it
    encoder_sha256: str  # of the phonetic encoder's weights, which shape the evidence too
    jaw_weight: float = 0.0  # how far the take's jaw follows the head's opening (guide_jaw); 0: evidence only

    def opening(self, states: np.ndarray, n_frames: int) -> np.ndarray:
        """(T50, F) states of ``features`` → (n_frames,) mouth opening."""
        return run_head(self.head, states, n_frames)

    def guided_jaw(self, units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], samples: np.ndarray,
                   n_frames: int) -> np.ndarray:
        """The decoder's jaw for ``samples`` (16 kHz) guided by this head's opening of them (:func:`guide_jaw`), as
        generate guides a take's before its seal; the jaw as it is, and the head not run, at a jaw weight of 0."""
        if self.jaw_weight <= 0.0:
            return jaw
        return guide_jaw(units, jaw, unit_names, self.opening(self.features(samples), n_frames), self.jaw_weight)


def folder_opening_head(folder: str | Path, device: str = "cpu", detector=None) -> FolderOpeningHead | None:
    """A speech model folder's mouth-opening head, or None where the folder has none. ``detector``: the folder's p/b/m
    detector (``bilabial.folder_detector``), whose loaded encoder the head reuses where it reads the same one."""
    from ..rerun import file_sha256
    from .bilabial import encoder_folder
    from .phonetic_encoder import WEIGHTS_FILE, phonetic_features

    if not has_opening_head(folder):
        return None
    head, config = load_opening_head(folder)
    encoder = encoder_folder(folder, config, OPENING_CONFIG, FIX)
    shared = detector is not None and detector.features is not None and detector.encoder == encoder.name
    states = detector.features if shared else phonetic_features(encoder, device)
    return FolderOpeningHead(head.to(device), states, encoder.name, file_sha256(Path(folder) / OPENING_FILE),
                             file_sha256(encoder / WEIGHTS_FILE), config["jaw_weight"])


def guide_jaw(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], opening: np.ndarray,
              weight: float) -> np.ndarray:
    """The decoder's jaw (T,) moved so that the default head's mouth opening becomes, approximately (one slope for
    every mouth shape), (1 − ``weight``) × the decoder's own + ``weight`` × the head's ``opening`` (T,). The head
    has no scale of its own (trained on correlation), so its opening is first given the decoder's mean and spread
    over the take: the decoder keeps how wide this voice opens, the head says when. The opening grows almost linearly with the jaw angle on the default
    head (0.008 shut, 0.46 at JAW_MAX), so one slope turns the change of opening into a change of jaw."""
    from ..motion.fusion import predicted_mouth_opening
    from .decoder import JAW_MAX

    if len(opening) != len(jaw):
        raise ValueError(f"the head's opening has {len(opening)} frames, the jaw {len(jaw)}")
    own = predicted_mouth_opening(units, unit_names, jaw)
    head = np.asarray(opening, np.float64)
    if weight <= 0.0 or not np.isfinite(head).all() or head.std() < 1e-9 or own.std() < 1e-9:
        return np.asarray(jaw, np.float32)
    matched = (head - head.mean()) / head.std() * own.std() + own.mean()
    rest = np.zeros((2, len(unit_names)), np.float32)
    slope = float(np.diff(predicted_mouth_opening(rest, unit_names, np.array([0.0, 0.2], np.float32)))[0] / 0.2)
    return np.clip(jaw + weight * (matched - own) / slope, 0.0, JAW_MAX).astype(np.float32)
