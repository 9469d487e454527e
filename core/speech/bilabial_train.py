"""Train the bilabial detector (:mod:`.bilabial`) on real speech with aligned phones, and score it per event.

Real read speech (``data voices``) and real talking faces (``data real``) carry their aligned phones in the corpus
shards; every frame inside a p/b/m is a positive. The detector reads the features of the speech model it joins
(the same encoder), so it adds one small network to a model folder and nothing else. Early stopping on the
corpora's held-out lines; the event scores (a p/b/m is found when a frame within it ±1 frame is over the threshold,
as the real-speech evaluation counts a closure) are reported at a few thresholds. Several detectors, each reading
its own part of the features (``INPUTS``), make one ensemble (``bilabial.BilabialEnsemble``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from .bilabial import BilabialDetector, BilabialEnsemble, detect, detected_bilabials
from .model import BILABIAL_CONFIG, BILABIAL_FILE, BILABIAL_INPUTS as INPUTS
from .train import FPS, Example, _batch, load_examples

POSITIVE_WEIGHT = 3.0  # p/b/m are ~8 % of speech frames: a missed one costs three times a false frame
SCORED_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


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


def score_events(detector: BilabialEnsemble, examples: list[Example]) -> dict:
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


def input_columns(name: str, features_kind: str, n_features: int) -> tuple[int, int]:
    """The feature columns [first, end) the ``name``d input (one of INPUTS) covers for a decoder's features."""
    from .features import LOG_MEL_AND_SSL_FEATURES
    from .log_mel import N_MELS

    if name == "all":
        return 0, n_features
    if features_kind != LOG_MEL_AND_SSL_FEATURES:
        raise LatticeTalkError(f"detector input {name!r} needs a decoder trained on log-mel bands and encoder states "
                               f"together; this one reads {features_kind!r}: use --inputs all")
    return (0, N_MELS) if name == "log-mel" else (N_MELS, n_features)


def _examples(corpora: list[str | Path], split: str, features) -> list[Example]:
    """Every corpus's ``split`` (a corpus may have none: one folder of held-out lines beside training ones)."""
    from ..data.corpus import Corpus

    examples = [ex for corpus in corpora if Corpus(corpus).shards(split)
                for ex in load_examples(corpus, split, features)]
    if not examples:
        raise LatticeTalkError(f"no '{split}' lines in {', '.join(map(str, corpora))}: the detector needs both training "
                               "and held-out lines ('data voices' keeps --heldout-share of them)")
    return examples


def _train_member(columns: tuple[int, int], train: list[Example], eval_batches: list, epochs: int,
                  steps_per_epoch: int, batch_size: int, lr: float, hidden: int, seed: int, patience: int,
                  progress: Callable[[float, float], None]) -> tuple[BilabialDetector, dict]:
    """One detector on ``columns``, early-stopped on the held-out batches: its best state and its history."""
    import torch

    from ..training import optimizer_step

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    detector = BilabialDetector(columns[1] - columns[0], hidden=hidden, columns=columns)
    optimizer = torch.optim.AdamW(detector.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    history = {"train": [], "heldout": [], "best_epoch": -1, "best": float("inf")}
    for epoch in range(epochs):
        detector.train()
        losses = [optimizer_step(detector, optimizer, schedule,
                                 detector_loss(detector, _batch(train, rng, batch_size, perturb=True)))
                  for _ in range(steps_per_epoch)]
        detector.eval()
        with torch.no_grad():
            held = float(np.mean([float(detector_loss(detector, b)) for b in eval_batches]))
        history["train"].append(float(np.mean(losses)))
        history["heldout"].append(held)
        if held < history["best"]:
            history["best"], history["best_epoch"] = held, epoch
            best_state = {k: v.clone() for k, v in detector.state_dict().items()}
        progress(history["train"][-1], held)
        if epoch - history["best_epoch"] >= patience:
            break
    detector.load_state_dict(best_state)
    return detector.eval(), history


def train_detector(model_dir: str | Path, corpora: list[str | Path], out_dir: str | Path, epochs: int = 12,
                   steps_per_epoch: int = 100, batch_size: int = 24, lr: float = 2e-3, threshold: float = 0.5,
                   hidden: int = 96, seed: int = 0, patience: int = 4, chosen_on: str = "",
                   inputs: tuple[str, ...] | None = None,
                   progress: Callable[[int, float, float], None] | None = None) -> dict:
    """An ensemble of detectors, one per name in ``inputs`` (INPUTS; by default every input the decoder's features
    have), for the speech model in ``model_dir``, trained on ``corpora``; ``out_dir`` becomes a copy of the model
    folder with the detector in it (``model_dir`` itself when they are the same); ``chosen_on``: what ``threshold``
    was chosen on, kept in its config. ``progress``: (epochs done over all detectors, training loss, held-out loss).
    Returns each detector's history and the ensemble's held-out event scores."""
    from safetensors.torch import save_file

    from .features import LOG_MEL_AND_SSL_FEATURES, decoder_features
    from .model import decoder_config

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not corpora:
        raise LatticeTalkError("the detector needs real speech with aligned phones (--corpus: 'data voices' or "
                               "'data real' folders)")
    unknown = sorted(set(inputs or ()) - set(INPUTS))
    if inputs is not None and (not inputs or unknown):
        raise LatticeTalkError(f"detector inputs {', '.join(unknown) or '(none)'}: give one or more of {', '.join(INPUTS)}")
    copy = out_dir.resolve() != model_dir.resolve()
    if copy and out_dir.exists() and any(out_dir.iterdir()):
        raise LatticeTalkError(f"{out_dir}: the folder is not empty; give a new folder for the model with its "
                               "detector (or --out the model folder itself)")
    config = decoder_config(model_dir)
    kind = config.get("features", "")
    if inputs is None:
        inputs = INPUTS if kind == LOG_MEL_AND_SSL_FEATURES else ("all",)
    columns = [input_columns(name, kind, config["model"]["in_dim"]) for name in inputs]  # the decoder's feature width
    features = decoder_features(config, model_dir)
    train, heldout = (_examples(corpora, split, features) for split in ("train", "heldout"))
    eval_rng = np.random.default_rng(seed + 10_000)
    eval_batches = [_batch(heldout, eval_rng, batch_size) for _ in range(8)]
    members, histories, done = [], [], [0]

    def member_progress(train_loss: float, heldout_loss: float) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], train_loss, heldout_loss)

    for k, member_columns in enumerate(columns):  # each its own seed: the same data, different mistakes
        member, history = _train_member(member_columns, train, eval_batches, epochs, steps_per_epoch, batch_size, lr,
                                        hidden, seed + k, patience, member_progress)
        members.append(member)
        histories.append(history)
    detector = BilabialEnsemble(members).eval()
    scores = score_events(detector, heldout)
    if copy:  # only once the detector is made: a refused or failed run leaves no half-made folder behind
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in detector.state_dict().items()}, str(out_dir / BILABIAL_FILE))
    (out_dir / BILABIAL_CONFIG).write_text(json.dumps({
        "model": detector.config, "inputs": list(inputs), "threshold": threshold, "threshold_chosen_on": chosen_on,
        "corpora": [str(c) for c in corpora], "epochs": [h["best_epoch"] for h in histories],
        "heldout_loss": [h["best"] for h in histories], "heldout_events": scores,
        "train_hours": round(sum(len(ex.jaw) for ex in train) / FPS / 3600, 3), "seed": seed}, indent=2))
    return {"histories": histories, "heldout_events": scores}
