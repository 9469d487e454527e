"""Train the bilabial detector (:mod:`.bilabial`) on real speech with aligned phones, and score it per event.

Real read speech (``data voices``) and real talking faces (``data real``) carry their aligned phones in the corpus
shards; every frame inside a p/b/m is a positive. The detector reads the features of the speech model it joins
(the same encoder), so it adds one small network to a model folder and nothing else. Early stopping on the
corpora's held-out lines; the event scores (a p/b/m is found when a frame within it ±1 frame is over the threshold,
as the real-speech evaluation counts a closure) are reported at a few thresholds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from .bilabial import JAW_GATE, BilabialDetector, detect, detected_bilabials
from .model import BILABIAL_CONFIG, BILABIAL_FILE
from .head_train import folded, split_examples, standardize, train_head
from .phonetic_encoder import PHONETIC_DIR, PHONETIC_FEATURES, phonetic_features
from .train import FPS, TRAINING_STATE, Example

POSITIVE_WEIGHT = 3.0  # p/b/m are ~8 % of speech frames: a missed one costs three times a false frame
SCORED_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def event_scores(probability: np.ndarray, example: Example, threshold: float) -> tuple[int, int, int, int]:
    """(p/b/m found, p/b/m, detections (each run's most certain frame) on no p/b/m ±1 frame, detections) for one
    utterance."""
    from ..phonemes import BILABIALS

    frames = np.arange(len(probability)) / FPS
    margin = 1.0 / FPS
    truth = [e for e in example.utterance.phonemes if e.phoneme in BILABIALS]
    found = sum(bool((probability[(frames >= e.start - margin) & (frames <= e.end + margin)] >= threshold).any())
                for e in truth)
    detected = np.asarray(detected_bilabials(probability, threshold)) / FPS
    stray = sum(not any(t.start - margin <= time <= t.end + margin for t in truth) for time in detected)
    return found, len(truth), stray, len(detected)


def score_events(detector: BilabialDetector, examples: list[Example]) -> dict:
    """Recall and stray events over ``examples`` at each of SCORED_THRESHOLDS."""
    probabilities = [detect(detector, ex.features, len(ex.jaw)) for ex in examples]
    scores = {}
    for threshold in SCORED_THRESHOLDS:
        found, total, stray, events = np.sum([event_scores(p, ex, threshold)
                                              for p, ex in zip(probabilities, examples)], axis=0).tolist()
        scores[f"{threshold:.1f}"] = {"found": found, "bilabials": total, "recall": found / max(total, 1),
                                      "stray": stray, "events": events}
    return scores


def detector_loss(detector: BilabialDetector, batch) -> "torch.Tensor":
    import torch

    features, _, _, bilabial, _, _, trust = batch
    logits = detector(features, bilabial.shape[1])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, bilabial.float(), pos_weight=torch.tensor(POSITIVE_WEIGHT), reduction="none")
    return (loss * (trust > 0)).mean()


def train_detector(model_dir: str | Path, corpora: list[str | Path], out_dir: str | Path, epochs: int = 12,
                   steps_per_epoch: int = 100, batch_size: int = 24, lr: float = 2e-3, threshold: float = 0.5,
                   hidden: int = 96, seed: int = 0, patience: int = 4, chosen_on: str = "",
                   phonetic_encoder: str | Path | None = None, jaw_gate: float = JAW_GATE,
                   progress: Callable[[int, float, float], None] | None = None) -> dict:
    """A detector for the speech model in ``model_dir`` trained on ``corpora``; ``out_dir`` becomes a copy of the
    model folder with the detector in it (``model_dir`` itself when they are the same); ``chosen_on``: what
    ``threshold`` was chosen on, kept in its config. ``phonetic_encoder``: a Whisper encoder folder
    (``speech import-whisper``) whose states the detector reads instead of the decoder's features; it is copied into
    ``out_dir`` as PHONETIC_DIR. ``jaw_gate``: seal a detection only where the decoder's jaw is at most this open
    (bilabial.JAW_GATE). Returns the history and the held-out event scores of the best epoch."""
    import torch
    from safetensors.torch import save_file

    from .features import decoder_features
    from .model import decoder_config

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not corpora:
        raise LatticeTalkError("the detector needs real speech with aligned phones (--corpus: 'data voices' or "
                               "'data real' folders)")
    copy = out_dir.resolve() != model_dir.resolve()
    if copy and out_dir.exists() and any(out_dir.iterdir()):
        raise LatticeTalkError(f"{out_dir}: the folder is not empty; give a new folder for the model with its "
                               "detector (or --out the model folder itself)")
    if phonetic_encoder is None:
        features = decoder_features(decoder_config(model_dir), model_dir)
    else:
        features = phonetic_features(phonetic_encoder)  # checks the folder before any data is read
    train, heldout = (split_examples(corpora, split, features) for split in ("train", "heldout"))
    scale = None if phonetic_encoder is None else standardize(train, heldout)
    if copy:  # only once the data is known to be usable: a refused run leaves no half-made folder behind
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*TRAINING_STATE))
    if phonetic_encoder is not None and Path(phonetic_encoder).resolve() != (out_dir / PHONETIC_DIR).resolve():
        shutil.rmtree(out_dir / PHONETIC_DIR, ignore_errors=True)
        shutil.copytree(phonetic_encoder, out_dir / PHONETIC_DIR)
    torch.manual_seed(seed)
    detector = BilabialDetector(train[0].features.shape[1], hidden=hidden)
    best_state, history = train_head(detector, detector_loss, train, heldout, epochs, steps_per_epoch, batch_size, lr,
                                     weight_decay=1e-4, seed=seed, patience=patience, perturb=scale is None,
                                     progress=progress)
    scores = score_events(detector, heldout)
    reads = {} if scale is None else {"features": PHONETIC_FEATURES, "encoder": PHONETIC_DIR}
    (out_dir / BILABIAL_CONFIG).write_text(json.dumps({
        "model": detector.config, **reads, "threshold": threshold, "jaw_gate": jaw_gate,
        "threshold_chosen_on": chosen_on,
        "corpora": [str(c) for c in corpora],
        "epoch": history["best_epoch"], "heldout_loss": history["best"], "heldout_events": scores,
        "train_hours": round(sum(len(ex.jaw) for ex in train) / FPS / 3600, 3), "seed": seed}, indent=2))
    save_file({k: v.half() for k, v in folded(best_state, scale).items()}, str(out_dir / BILABIAL_FILE))
    return {"history": history, "heldout_events": scores}
