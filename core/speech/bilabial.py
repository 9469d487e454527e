"""The bilabial detector: a small network trained on real voices that hears p, b and m, and seals the lips on them.

The decoder's closure channel learnt its p/b/m mostly from synthetic voices; on real speakers it stays low on many
of them (held-out GRID speakers: "by", "please"), and no seal window catches a closure the channel never raises.
The detector reads the decoder's own features (log-mel bands + encoder states) and is trained on real speech
only, every aligned p/b/m a positive (``bilabial_train``). Where it is sure, the frames become p/b/m events sealed
the way transcript mode seals aligned phones (``core.mouth.closure_curve``): audio alone, no recogniser.

A speech model folder may hold one (``bilabial.safetensors`` + ``bilabial.json``); without it the decoder's own seal
is all there is, as before. The detector reads either the decoder's features or, where ``bilabial.json`` says
``"features": "whisper_encoder_states"``, the states of the phonetic encoder in the folder its ``"encoder"`` names
(:mod:`.phonetic_encoder`: Whisper's first layers, which hear p, b and m in voices our encoder never met)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from ..phonemes import PhonemeEvent
from .frame_head import FrameHead, head_sizes, run_head
from .model import BILABIAL_CONFIG, BILABIAL_FILE, load_weights

# A detected p/b/m is sealed only where the decoder's jaw is already nearly shut (rad; JAW_MAX is 0.45): for the
# detector on the decoder's features, detections inside open vowels were mostly strays, and sealing them cost the
# synthetic check 0.13 mm of lip error. A detector's config may set its own gate ("jaw_gate"; JAW_MAX: none).
JAW_GATE = 0.06
FIX = "copy the model folder again or train a detector with 'python -m lattice_talk speech train-bilabial'"


class BilabialDetector(FrameHead):
    """(B, T50, F) features → (B, T) p/b/m logits at ``n_frames`` output frames."""


def has_detector(folder: str | Path) -> bool:
    return (Path(folder) / BILABIAL_FILE).is_file()


def load_detector(folder: str | Path) -> tuple[BilabialDetector, dict]:
    """The detector in a speech model folder (fp16 on disk, fp32 in memory) and its checked config."""
    from ..validate import MAX_CONFIG_BYTES, number, read_json

    folder = Path(folder)
    path = folder / BILABIAL_CONFIG
    config = read_json(path, "bilabial detector config", MAX_CONFIG_BYTES, FIX)
    sizes = head_sizes(config, path, FIX)
    config["threshold"] = number(config.get("threshold"), f"{path}: threshold", 0.0, 1.0, FIX)
    config["jaw_gate"] = number(config.get("jaw_gate", JAW_GATE), f"{path}: jaw_gate", 0.0, 1.0, FIX)
    detector = load_weights(BilabialDetector(**sizes), folder / BILABIAL_FILE, BILABIAL_CONFIG, FIX)
    return detector, config


@dataclass(eq=False)
class FolderDetector:
    """A model folder's detector, its sealing threshold and what it reads: ``features`` (audio → its input) for a
    detector on the phonetic encoder, None for one on the decoder's own features."""

    detector: BilabialDetector
    threshold: float
    jaw_gate: float = JAW_GATE  # seal only where the decoder's jaw is at most this open (rad)
    features: Callable[[np.ndarray], np.ndarray] | None = None
    encoder: str = ""  # the phonetic encoder's folder inside the model folder ("" on the decoder's features)
    sha256: str = ""  # of the detector's weights: a take names the exact weights that sealed it
    encoder_sha256: str = ""  # of the phonetic encoder's weights, which shape the take too ("" without one)

    def probability(self, decoder_features: np.ndarray, samples: np.ndarray, n_frames: int) -> np.ndarray:
        """The p/b/m probability of each of ``n_frames`` frames of ``samples`` (16 kHz), whose decoder features
        are ``decoder_features``."""
        return detect(self.detector, decoder_features if self.features is None else self.features(samples), n_frames)


def encoder_folder(folder: str | Path, config: dict, config_name: str = BILABIAL_CONFIG, fix: str = FIX) -> Path | None:
    """The phonetic encoder folder a head's config (``config_name``: the detector's, or the mouth-opening head's)
    names, inside the model ``folder``; None for a head on the decoder's features. The name must be one plain folder
    name that stays inside the model folder (the config is data from elsewhere: no absolute path, drive, ``..`` or
    link out)."""
    from .phonetic_encoder import PHONETIC_FEATURES

    features = config.get("features", "decoder")
    if features == "decoder":
        return None
    path, name = Path(folder) / config_name, config.get("encoder")
    if features != PHONETIC_FEATURES:
        raise LatticeTalkError(f"{path}: the head reads features {features!r}, which this LatticeTalk does not "
                               f"know; update it, or {fix}")
    inside = isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name) is not None \
        and (Path(folder) / name).resolve().is_relative_to(Path(folder).resolve()) and (Path(folder) / name).is_dir()
    if not inside:
        raise LatticeTalkError(f"{path}: the head reads the phonetic encoder in folder {name!r}, which this model "
                               f"folder does not have; {fix}")
    return Path(folder) / name


def config_encoder(folder: str | Path, config_name: str = BILABIAL_CONFIG, fix: str = FIX) -> Path | None:
    """The phonetic encoder folder the head config ``config_name`` in the model ``folder`` names (read as
    :func:`encoder_folder` checks it), or None where the folder has no such config or the head reads the decoder's
    features."""
    from ..validate import MAX_CONFIG_BYTES, read_json

    path = Path(folder) / config_name
    if not path.is_file():
        return None
    return encoder_folder(folder, read_json(path, f"{config_name} (a head's config)", MAX_CONFIG_BYTES, fix),
                          config_name, fix)


def folder_detector(folder: str | Path, device: str = "cpu", phonetic=None) -> FolderDetector | None:
    """A speech model folder's detector with what it reads, or None where the folder has no detector. ``phonetic``:
    (encoder folder name, its loaded states function) already loaded for the decoder, reused where it is the same."""
    from ..rerun import file_sha256
    from .phonetic_encoder import WEIGHTS_FILE, phonetic_features

    if not has_detector(folder):
        return None
    detector, config = load_detector(folder)
    found = FolderDetector(detector.to(device), config["threshold"], config["jaw_gate"],
                           sha256=file_sha256(Path(folder) / BILABIAL_FILE))
    encoder = encoder_folder(folder, config)
    if encoder is None:
        return found
    shared = phonetic is not None and phonetic[0] == encoder.name
    return replace(found, features=phonetic[1] if shared else phonetic_features(encoder, device), encoder=encoder.name,
                   encoder_sha256=file_sha256(encoder / WEIGHTS_FILE))


def detect(detector: BilabialDetector, features: np.ndarray, n_frames: int) -> np.ndarray:
    """(T50, F) features → the p/b/m probability of each of ``n_frames`` frames."""
    from scipy.special import expit

    return expit(run_head(detector, features, n_frames))


def detected_bilabials(probability: np.ndarray, threshold: float) -> list[int]:
    """Each run of frames at or above ``threshold`` → its most certain frame: a run is often wider than the closure
    (the detector is unsure where in it the lips meet), and lips held shut over all of it cost more than they gain
    (synthetic lip error +0.1–0.2 mm)."""
    above = np.concatenate([[False], probability >= threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [start + int(np.argmax(probability[start:end])) for start, end in zip(edges[0::2], edges[1::2])]


def seal_detected_bilabials(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], probability: np.ndarray,
                            fps: float, threshold: float, jaw_gate: float = JAW_GATE) -> tuple[np.ndarray, np.ndarray, int]:
    """Units and jaw sealed for one frame on every detected p/b/m where the jaw is at most ``jaw_gate`` open (a
    one-frame p/b/m event through ``core.mouth.closure_curve``, as transcript mode seals aligned ones), and how many
    were sealed."""
    from ..mouth import closure_curve, seal_lips

    frames = [k for k in detected_bilabials(probability, threshold) if jaw[k] <= jaw_gate]
    events = [PhonemeEvent("b", max(0.0, k - 0.5) / fps, (k + 0.5) / fps) for k in frames]
    closure = closure_curve(events, np.arange(len(jaw)) / fps, fps)
    units, jaw = seal_lips(units, jaw, closure, unit_names)
    return units, jaw, len(frames)
