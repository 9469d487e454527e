"""Train the mouth-opening head (:mod:`.opening`) on real talking faces.

A ``data real`` corpus holds, for every frame of a speaker's videos, the default head's units and jaw that
reproduce the tracked face, and the tracker's confidence. Their mouth opening on the default head (what
``core.motion.fusion.predicted_mouth_opening`` measures) is the target; the loss is one minus its correlation with
the head's output over each window's trusted frames, because the offset estimate reads the opening by correlation
alone (a speaker who opens wider is no different). The head reads the speech model's phonetic encoder, standardised
on the training lines and folded back into its first layer, as the p/b/m detector is (``bilabial_train``); early
stopping on the corpora's held-out lines."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from .head_train import folded, split_examples, standardize, train_head
from .model import DECODER_CONFIG, OPENING_CONFIG, OPENING_FILE
from .opening import MouthOpeningHead
from .phonetic_encoder import PHONETIC_FEATURES, phonetic_features
from .train import FPS, TRAINING_STATE, Example

# ±0.12 s of context in the two dilated layers (50 Hz), one output frame more either side: a phone and its
# neighbours, as in the probe that first measured the head (in-the-wild dev clips: r 0.65 against the decoder's 0.43)
DILATIONS = (1, 2)
HIDDEN = 128


def _with_opening_target(example: Example) -> Example:
    """The example with its default-head mouth opening in the ``closure`` channel, the per-frame channel the window
    batcher (``train._batch``) carries besides units and jaw; the head uses nothing else of it."""
    from ..motion.fusion import predicted_mouth_opening

    target = predicted_mouth_opening(example.units, tuple(example.utterance.unit_names), example.jaw)
    return replace(example, closure=target.astype(np.float32))


def correlation_loss(head: MouthOpeningHead, batch) -> "torch.Tensor":
    """1 − the Pearson r of the head's output with the target over each window's trusted frames (tracker confidence
    over CONFIDENCE_RAMP[0], the frames the offset estimate reads), averaged over the windows whose target moves at
    all there."""
    import torch

    from ..motion.fusion import CONFIDENCE_RAMP

    features, _, _, _, target, _, trust = batch
    output = head(features, target.shape[1])
    weight = (trust > CONFIDENCE_RAMP[0]).float()
    total = weight.sum(1, keepdim=True).clamp_min(1.0)
    centred = [(x - (x * weight).sum(1, keepdim=True) / total) * weight for x in (output, target)]
    norms = [c.norm(dim=1) for c in centred]
    r = (centred[0] * centred[1]).sum(1) / (norms[0] * norms[1] + 1e-6)
    moving = norms[1] > 1e-3
    return (1.0 - r[moving]).mean() if moving.any() else output.sum() * 0.0


def train_opening_head(model_dir: str | Path, corpora: list[str | Path], out_dir: str | Path, epochs: int = 12,
                       steps_per_epoch: int = 100, batch_size: int = 24, lr: float = 1e-3, seed: int = 0,
                       patience: int = 4, chosen_on: str = "", jaw_weight: float = 0.0,
                       progress: Callable[[int, float, float], None] | None = None) -> dict:
    """A mouth-opening head for the speech model in ``model_dir``, reading its phonetic encoder (the one its p/b/m
    detector reads), trained on ``corpora`` (``data real`` folders); ``out_dir`` becomes a copy of the model folder
    with the head in it (``model_dir`` itself when they are the same); ``chosen_on``: what chose this head, kept in its
    config; ``jaw_weight``: how far the take's jaw follows the head (:func:`~.opening.guide_jaw`; 0: evidence only, as
    it ships; the recipe's teacher for real voices guides at 1). Returns the history and the held-out mean r."""
    import torch
    from safetensors.torch import save_file

    from .bilabial import config_encoder

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not 0.0 <= jaw_weight <= 1.0:
        raise LatticeTalkError(f"--jaw-weight {jaw_weight} is outside 0–1 (0: the head is evidence only; 1: the jaw "
                               "follows it fully)")
    if not corpora:
        raise LatticeTalkError("the mouth-opening head needs real talking faces (--corpus: 'data real' folders)")
    if not (model_dir / DECODER_CONFIG).is_file():
        raise LatticeTalkError(f"{model_dir}: not a speech model folder (no {DECODER_CONFIG}); give --model a trained "
                               "model's folder")
    encoder = config_encoder(model_dir)  # the one its p/b/m detector reads
    if encoder is None:
        raise LatticeTalkError(f"{model_dir}: the mouth-opening head reads the model's phonetic encoder, and this model "
                               "has none; give a model with a p/b/m detector on it ('speech train-bilabial "
                               "--phonetic-encoder')")
    copy = out_dir.resolve() != model_dir.resolve()
    if copy and out_dir.exists() and any(out_dir.iterdir()):
        raise LatticeTalkError(f"{out_dir}: the folder is not empty; give a new folder for the model with its head (or "
                               "--out the model folder itself)")
    features = phonetic_features(encoder)
    train, heldout = ([_with_opening_target(ex) for ex in split_examples(corpora, split, features)]
                      for split in ("train", "heldout"))
    scale = standardize(train, heldout)
    torch.manual_seed(seed)
    head = MouthOpeningHead(train[0].features.shape[1], hidden=HIDDEN, dilations=DILATIONS)
    best_state, history = train_head(head, correlation_loss, train, heldout, epochs, steps_per_epoch, batch_size, lr,
                                     weight_decay=1e-2, seed=seed, patience=patience, progress=progress)
    if copy:  # only once the head is trained: a refused or failed run leaves no half-made folder behind
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*TRAINING_STATE))
    (out_dir / OPENING_CONFIG).write_text(json.dumps({
        "model": head.config, "features": PHONETIC_FEATURES, "encoder": encoder.name,
        "target": "the default head's mouth opening (inner-lip gap over the eye-corner distance), trained on its "
                  "correlation: no fixed scale",
        "chosen_on": chosen_on, "corpora": [str(c) for c in corpora], "epoch": history["best_epoch"],
        "heldout_mean_r": round(1.0 - history["best"], 4),
        "train_hours": round(sum(len(ex.jaw) for ex in train) / FPS / 3600, 3), "seed": seed,
        **({"jaw_weight": jaw_weight} if jaw_weight else {})}, indent=2))
    save_file({k: v.half() for k, v in folded(best_state, scale).items()}, str(out_dir / OPENING_FILE))
    return {"history": history, "heldout_mean_r": 1.0 - history["best"]}
