"""Train and evaluate the decoder on the synthetic corpus (features → default-head mouth parameters).

Losses: L1 on ARKit units (mouth units weighted up) and jaw, L1 on their frame-to-frame velocity, extra
weight inside every p/b/m so closures are learned, not averaged away, the lip vertex error itself (the
default head's lip points posed differentiably, so training minimises what evaluation measures) and the
auxiliary mouth-class cross-entropy. Checkpoints every epoch,
resume, early stopping on the held-out loss. Evaluation poses the default head with the predictions and
measures lip vertex error, bilabial closure and A/V offset against the corpus's own motion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from .log_mel import FEATURE_RATE, N_MELS, SAMPLE_RATE, log_mel
from .model import DECODER_CONFIG, DECODER_FILE, SEAL_DEFAULT, apply_seal, decode, load_decoder

FPS = 30.0
WINDOW_SECONDS = 3.0
# what train_decoder keeps in its folder to resume: never part of a copied model (a head's training copies the folder)
TRAINING_STATE = ("train_state.json", "last.safetensors", "optimizer.pt")


@dataclass
class Example:
    id: str
    features: np.ndarray  # (T50, F)
    units: np.ndarray  # (T, U)
    jaw: np.ndarray  # (T,)
    bilabial: np.ndarray  # (T,) bool: frame inside a p/b/m
    closure: np.ndarray  # (T,) 0..1: the articulation's seal channel (the decoder's closure target)
    mouth_class: np.ndarray  # (T,) int64: index into MOUTH_CLASSES of the phoneme spoken at each frame
    utterance: object  # the CorpusUtterance, for evaluation
    weight: np.ndarray  # (T,) float32 0..1: how far the frame's targets are trusted (a real tracker's confidence)


def load_examples(corpus_dir: str | Path, split: str, features: Callable[[np.ndarray], np.ndarray] = log_mel,
                  limit: int | None = None) -> list[Example]:
    from ..mouth import closure_curve
    from ..data.corpus import Corpus
    from ..phonemes import BILABIALS, MOUTH_CLASSES

    out = []
    for utterance in Corpus(corpus_dir).utterances(split):
        times = np.arange(len(utterance.jaw)) / utterance.fps
        bilabial = np.zeros(len(times), bool)
        mouth_class = np.zeros(len(times), np.int64)  # 0 = rest
        for event in utterance.phonemes:
            inside = (times >= event.start) & (times < event.end)
            mouth_class[inside] = MOUTH_CLASSES.index(event.mouth_class)
            if event.phoneme in BILABIALS:
                bilabial |= (times >= event.start) & (times <= event.end)
        closure = closure_curve(utterance.phonemes, times, utterance.fps).astype(np.float32)
        weight = np.ones(len(times), np.float32) if utterance.confidence is None else utterance.confidence
        out.append(Example(utterance.id, features(utterance.audio), utterance.units, utterance.jaw, bilabial, closure,
                           mouth_class, utterance, weight.astype(np.float32)))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise LatticeTalkError(f"{corpus_dir}: no '{split}' utterances")
    return out


WARP_RANGE = 0.12  # ± share of the mel axis a voice's formants may sit higher or lower (vocal tract length)
FREQUENCY_MASKS, MASK_BANDS = 2, 8


def perturb_voice(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training-time voice perturbation on (T, bands) log-mel: warp the frequency axis (VTLP: a longer
    or shorter vocal tract moves every formant together) and blank a few bands (SpecAugment), so the
    decoder keys on what is said rather than on the few voices of the corpus."""
    bands = features.shape[1]
    source = np.clip(np.arange(bands) * (1.0 + rng.uniform(-WARP_RANGE, WARP_RANGE)), 0, bands - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, bands - 1)
    frac = (source - low).astype(np.float32)
    out = features[:, low] * (1.0 - frac) + features[:, high] * frac
    for _ in range(FREQUENCY_MASKS):
        width = int(rng.integers(0, MASK_BANDS + 1))
        start = int(rng.integers(0, bands - width + 1))
        out[:, start:start + width] = 0.0  # the per-utterance mean of normalised log-mel
    return out


def _batch(examples: list[Example], rng: np.random.Generator, size: int, perturb: bool = False):
    """Random aligned windows: WINDOW_SECONDS of features and the matching frames (starts on 0.1 s steps,
    where 50 Hz and 30 fps frames coincide)."""
    import torch

    n50, n30 = int(WINDOW_SECONDS * FEATURE_RATE), int(WINDOW_SECONDS * FPS)
    feats, units, jaws, masks, closures, classes, weights = [], [], [], [], [], [], []
    for _ in range(size):
        ex = examples[int(rng.integers(len(examples)))]
        steps = max(1, int((len(ex.jaw) / FPS - WINDOW_SECONDS) / 0.1))
        start = int(rng.integers(steps)) if len(ex.jaw) > n30 else 0
        f0, t0 = start * 5, start * 3
        f = ex.features[f0:f0 + n50]
        if perturb:  # on the log-mel bands, which come first (encoder states after them stay as they are)
            f = np.concatenate([perturb_voice(f[:, :N_MELS].astype(np.float32), rng), f[:, N_MELS:]], axis=1)
        feats.append(np.pad(f, ((0, n50 - len(f)), (0, 0))))
        for store, arr in ((units, ex.units), (jaws, ex.jaw), (masks, ex.bilabial), (closures, ex.closure),
                           (classes, ex.mouth_class), (weights, ex.weight)):
            a = arr[t0:t0 + n30]
            store.append(np.pad(a, ((0, n30 - len(a)),) + ((0, 0),) * (a.ndim - 1), mode="edge" if len(a) else "constant"))
    return (torch.from_numpy(np.stack(feats).astype(np.float32, copy=False)), torch.from_numpy(np.stack(units).astype(np.float32)),
            torch.from_numpy(np.stack(jaws).astype(np.float32)), torch.from_numpy(np.stack(masks)),
            torch.from_numpy(np.stack(closures)), torch.from_numpy(np.stack(classes)),
            torch.from_numpy(np.stack(weights).astype(np.float32)))


@dataclass(frozen=True)
class LossWeights:
    lip_mm: float = 0.3  # per mm of lip vertex error (the metric: max over lip points, mean over frames)
    mouth_class: float = 0.3


def lip_vertex_error_mm(lip_rig, units, jaw, ref_units, ref_jaw, frame_weight=None) -> "torch.Tensor":
    """Mean over frames (weighted by ``frame_weight`` (B, T) when given) of the largest lip point distance (mm)
    between two (B, T) parameter sequences."""
    import torch

    def points(u, j):
        pose = torch.zeros(u.shape[0] * u.shape[1], 5, 3)
        pose[:, 2, 0] = j.reshape(-1)
        return lip_rig.points_torch(u.reshape(-1, u.shape[-1]), pose)

    with torch.no_grad():
        ref = points(ref_units, ref_jaw)
    worst = (1000.0 * (points(units, jaw) - ref).norm(dim=-1)).amax(-1)
    if frame_weight is None:
        return worst.mean()
    w = frame_weight.reshape(-1)
    return (worst * w).sum() / w.sum().clamp_min(1e-6)


def decoder_loss(model, batch, mouth_mask, lip_rig=None, weights: LossWeights = LossWeights()) -> "torch.Tensor":
    import torch

    features, units, jaw, bilabial, closure, mouth_class, trust = batch
    pred_units, pred_jaw, closure_logit, class_logits = model(features, units.shape[1])
    unit_weight = 1.0 + 2.0 * mouth_mask  # (U,)
    frame_weight = (1.0 + 4.0 * bilabial.float()) * trust  # (B, T); trust: 0 where a real face was not tracked
    err_units = ((pred_units - units).abs() * unit_weight).mean(-1)
    err_jaw = (pred_jaw - jaw).abs() / 0.05  # 0.05 rad ≈ 4 mm at the lips: same scale as a unit
    step_trust = trust[:, 1:] * trust[:, :-1]
    vel = (((pred_units.diff(dim=1) - units.diff(dim=1)).abs() * unit_weight).mean(-1) * step_trust).mean() + \
        ((pred_jaw.diff(dim=1) - jaw.diff(dim=1)).abs() / 0.05 * step_trust).mean()
    seal = (torch.nn.functional.binary_cross_entropy_with_logits(closure_logit, closure, pos_weight=torch.tensor(3.0),
                                                                 reduction="none") * trust).mean()
    loss = ((err_units + err_jaw) * frame_weight).mean() + 0.5 * vel + seal
    if lip_rig is not None and weights.lip_mm:
        loss = loss + weights.lip_mm * lip_vertex_error_mm(lip_rig, pred_units, pred_jaw, units, jaw, trust)
    if class_logits is not None and weights.mouth_class:
        loss = loss + weights.mouth_class * torch.nn.functional.cross_entropy(class_logits.transpose(1, 2), mouth_class)
    return loss


def train_decoder(corpus_dir: str | Path, out_dir: str | Path, epochs: int = 30, steps_per_epoch: int = 150,
                  batch_size: int = 24, lr: float = 2e-3, seed: int = 0, patience: int = 5,
                  hidden: int = 160, dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2),
                  weights: LossWeights = LossWeights(), init_from: str | Path | None = None, perturb: bool = True,
                  encoder: str | Path | None = None, encoder_states_only: bool = False,
                  phonetic_encoder: str | Path | None = None,
                  progress: Callable[[int, float, float], None] | None = None) -> dict:
    """Train, keep the best held-out checkpoint in ``out_dir``, resume if one is there; returns history.

    ``init_from``: a trained decoder folder to fine-tune (its architecture is kept; heads it lacks, such
    as the mouth-class head, start fresh; a log-mel decoder fine-tuned with an encoder gets the encoder's
    inputs added at zero weight, :func:`widened_input`). ``encoder``: an SSL encoder folder whose hidden states
    join the log-mel bands as features (``encoder_states_only``: replace them; voice perturbation works on mel
    bands, so it is then off). ``phonetic_encoder``: a phonetic encoder folder (:mod:`.phonetic_encoder`) whose
    states follow those, standardised over the training set while training and saved with that standardisation
    folded into the first layer (a decoder on log-mel + encoder states fine-tuned so starts where it was)."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..mouth import mouth_unit_mask
    from ..phonemes import MOUTH_CLASSES
    from ..heads import create
    from ..landmark_rig import LandmarkRig
    from ..mediapipe_points import LIPS
    from .features import (LOG_MEL_AND_SSL_FEATURES, LOG_MEL_FEATURES, LOG_MEL_SSL_AND_PHONETIC_FEATURES,
                           SSL_FEATURES, decoder_features)

    if encoder_states_only and encoder is None:
        raise LatticeTalkError("encoder states only (--encoder-states-only) needs an encoder (--encoder DIR)")
    if phonetic_encoder is not None and (encoder is None or encoder_states_only):
        raise LatticeTalkError("the phonetic encoder's states (--phonetic-encoder) follow log-mel bands and encoder "
                               "states: give --encoder DIR too, without --encoder-states-only")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    perturb = perturb and not (encoder is not None and encoder_states_only)
    feature_config = {"features": LOG_MEL_FEATURES} if encoder is None else \
        {"features": SSL_FEATURES if encoder_states_only else LOG_MEL_AND_SSL_FEATURES, "encoder": encoder_reference(encoder, out_dir)}
    if phonetic_encoder is not None:
        feature_config = {**feature_config, "features": LOG_MEL_SSL_AND_PHONETIC_FEATURES,
                          "phonetic_encoder": encoder_reference(phonetic_encoder, out_dir)}
    features = decoder_features(feature_config, out_dir)
    train = load_examples(corpus_dir, "train", features)
    heldout = load_examples(corpus_dir, "heldout", features)
    standardization = None
    if phonetic_encoder is not None:
        base_width = features.base(np.zeros(SAMPLE_RATE, np.float32)).shape[1]  # log-mel + SSL; the states after them
        standardization = input_standardization(train, base_width)
        for example in train + heldout:
            example.features = standardized(example.features, standardization)
    names = train[0].utterance.unit_names
    mouth_mask = torch.tensor(mouth_unit_mask(names), dtype=torch.float32)
    lip_rig = LandmarkRig(create("default"), point_ids=LIPS) if weights.lip_mm else None
    n_classes = len(MOUTH_CLASSES) if weights.mouth_class else 0
    model = _initial_decoder(train[0].features.shape[1], len(names), hidden, dilations, n_classes, init_from,
                             feature_config["features"], standardization)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "train_state.json"
    history = {"train": [], "heldout": [], "best_epoch": -1, "best": float("inf")}
    start_epoch = 0
    if state_path.exists():  # resume
        state = json.loads(state_path.read_text())
        history, start_epoch = state["history"], state["epoch"] + 1
        model.load_state_dict(load_file(str(out_dir / "last.safetensors")))
        optimizer.load_state_dict(torch.load(out_dir / "optimizer.pt", weights_only=True))
        for _ in range(start_epoch * steps_per_epoch):
            schedule.step()
        rng = np.random.default_rng(seed + start_epoch)
    eval_rng = np.random.default_rng(seed + 10_000)
    eval_batches = [_batch(heldout, eval_rng, batch_size) for _ in range(8)]
    for epoch in range(start_epoch, epochs):
        train_loss = _train_epoch(model, optimizer, schedule, train, rng, steps_per_epoch, batch_size, perturb,
                                  mouth_mask, lip_rig, weights)
        model.eval()
        with torch.no_grad():
            held = float(np.mean([float(decoder_loss(model, b, mouth_mask, lip_rig, weights)) for b in eval_batches]))
        history["train"].append(train_loss)
        history["heldout"].append(held)
        save_file(model.state_dict(), str(out_dir / "last.safetensors"))
        torch.save(optimizer.state_dict(), out_dir / "optimizer.pt")
        if held < history["best"]:
            history["best"], history["best_epoch"] = held, epoch
            _save_best(out_dir, model, standardization, {**feature_config, "fps": FPS, "unit_names": list(names), "epoch": epoch,
                                        "heldout_loss": held, "seed": seed, "loss_weights": asdict(weights),
                                        "voice_perturbation": perturb})
        state_path.write_text(json.dumps({"epoch": epoch, "history": history}))
        if progress is not None:
            progress(epoch, history["train"][-1], held)
        if epoch - history["best_epoch"] >= patience:
            break
    return history


def _initial_decoder(n_features: int, n_units: int, hidden: int, dilations: tuple[int, ...], n_classes: int,
                     init_from: str | Path | None, features: str, standardization: "Standardization | None" = None):
    """A new decoder, or one with ``init_from``'s architecture and weights (inputs widened to ``features``; a saved
    decoder's folded standardisation taken back out, for inputs standardised by ``standardization``)."""
    from .decoder import MotionDecoder
    from .features import LOG_MEL_FEATURES

    if init_from is not None:
        start, start_config = load_decoder(init_from)
        hidden, dilations = start_config["model"]["hidden"], tuple(start_config["model"]["dilations"])
    model = MotionDecoder(n_features, n_units, hidden=hidden, dilations=dilations, n_classes=n_classes)
    if init_from is not None:
        state = widened_input(start.state_dict(), start_config.get("features", LOG_MEL_FEATURES), model, features,
                              init_from)
        if standardization is not None and start_config.get("features") == features:
            state = fold_input_standardization(state, standardization, unfold=True)
        model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=False)
    return model


def _train_epoch(model, optimizer, schedule, train: list, rng: np.random.Generator, steps: int, batch_size: int,
                 perturb: bool, mouth_mask, lip_rig, weights: LossWeights) -> float:
    """``steps`` optimizer steps on random batches of ``train``; returns the mean training loss."""
    from ..training import optimizer_step

    model.train()
    losses = []
    for _ in range(steps):
        loss = decoder_loss(model, _batch(train, rng, batch_size, perturb=perturb), mouth_mask, lip_rig, weights)
        losses.append(optimizer_step(model, optimizer, schedule, loss))
    return float(np.mean(losses))


def _save_best(out_dir: Path, model, standardization: "Standardization | None", config: dict) -> None:
    """The shipped decoder: half-precision weights (``standardization`` folded into the first layer) and its config
    (the model's, then ``config``)."""
    from safetensors.torch import save_file

    state = model.state_dict()
    if standardization is not None:
        state = fold_input_standardization(state, standardization)
    save_file({k: v.half() for k, v in state.items()}, str(out_dir / DECODER_FILE))
    (out_dir / DECODER_CONFIG).write_text(json.dumps({"model": model.config, **config}, indent=2))


def encoder_reference(encoder: str | Path, out_dir: str | Path) -> str:
    """How ``decoder.json`` names its encoder: relative to the decoder folder when the encoder lies inside it
    (the folder then moves as one model), else the absolute folder, or a hub id as given."""
    path = Path(encoder).expanduser()
    if not path.is_dir():
        return str(encoder)
    path, out = path.resolve(), Path(out_dir).resolve()
    return str(path.relative_to(out)) if path.is_relative_to(out) else str(path)


@dataclass(frozen=True)
class Standardization:
    """Input columns ``first``.. are read as (x − mean) / std while training."""

    first: int
    mean: np.ndarray  # (F − first,) float32
    std: np.ndarray


def input_standardization(examples: list[Example], first: int) -> Standardization:
    """The mean and spread of feature columns ``first``.. over ``examples`` (computed in float64)."""
    total, square, count = 0.0, 0.0, 0
    for example in examples:
        columns = example.features[:, first:].astype(np.float64)
        total, square, count = total + columns.sum(0), square + (columns ** 2).sum(0), count + len(columns)
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean ** 2, 0.0)) + 1e-3
    return Standardization(first, mean.astype(np.float32), std.astype(np.float32))


def standardized(features: np.ndarray, standardization: Standardization) -> np.ndarray:
    """``features`` (fp16, as the decoder reads them) with columns ``first``.. standardised."""
    first = standardization.first
    columns = (features[:, first:].astype(np.float32) - standardization.mean) / standardization.std
    return np.concatenate([features[:, :first], columns.astype(np.float16)], axis=1)


def fold_input_standardization(state: dict, standardization: Standardization, unfold: bool = False) -> dict:
    """A decoder state that reads raw inputs where ``state`` read them standardised (W x' + b with x' = (x − m) / s
    is (W / s) x + b − W m / s); ``unfold``: the other way round."""
    import torch

    first = standardization.first
    mean, std = (torch.from_numpy(a).to(state["inp.weight"].dtype) for a in (standardization.mean, standardization.std))
    weight, bias = state["inp.weight"].clone(), state["inp.bias"].clone()  # (hidden, F, 1), (hidden,)
    columns = weight[:, first:, 0]
    if unfold:
        raw = columns
        columns = raw * std
        bias = bias + raw @ mean
    else:
        columns = columns / std
        bias = bias - columns @ mean
    weight[:, first:, 0] = columns
    return {**state, "inp.weight": weight, "inp.bias": bias}


def widened_input(state: dict, start_features: str, model, features: str, start_dir: str | Path) -> dict:
    """The state of a decoder to fine-tune, fitted to ``model``'s input: unchanged for the same features; for a
    log-mel decoder fine-tuned on log-mel + encoder states, its input layer gets zero weights for the states,
    so fine-tuning starts from exactly the log-mel decoder and the encoder is added only as far as it helps; so
    too for a log-mel + encoder decoder fine-tuned with the phonetic encoder's states after those."""
    import torch

    from .features import LOG_MEL_AND_SSL_FEATURES, LOG_MEL_FEATURES, LOG_MEL_SSL_AND_PHONETIC_FEATURES

    if start_features == features and state["inp.weight"].shape == model.inp.weight.shape:
        return state
    if (start_features, features) in ((LOG_MEL_FEATURES, LOG_MEL_AND_SSL_FEATURES),
                                      (LOG_MEL_AND_SSL_FEATURES, LOG_MEL_SSL_AND_PHONETIC_FEATURES)):
        weight = torch.zeros_like(model.inp.weight)
        if state["inp.weight"].shape[1] >= weight.shape[1]:
            raise LatticeTalkError(f"{start_dir}: its decoder reads {state['inp.weight'].shape[1]} features, as many "
                                   f"as the new {features!r} ones or more: another encoder? leave out --init-from and train from scratch")
        weight[:, :state["inp.weight"].shape[1]] = state["inp.weight"]
        return {**state, "inp.weight": weight}
    raise LatticeTalkError(f"{start_dir}: a decoder trained on {start_features!r} features cannot be fine-tuned on "
                           f"{features!r} (of another width, or from encoder states to log-mel); train from scratch")


# Candidate seal windows for calibration, from eager to only-when-sure. Sealing is a hard change (jaw shut,
# mouth shapes replaced), so a seal one frame early costs more lip error than a decoder's own soft closure.
SEAL_CANDIDATES = ((0.3, 0.7), (0.4, 0.8), (0.5, 0.9), (0.6, 1.0), (0.7, 1.0), (0.8, 1.0), (0.9, 1.0))
MIN_CLOSURE_RATE = 0.9  # calibration never trades bilabial closure below this for lip error


def evaluate(model, examples: list[Example], rig, seal: tuple[float, float] = SEAL_DEFAULT, detector=None,
             opening=None) -> dict:
    """Pose the default head with the predictions; compare with the corpus motion (same head). ``detector``: the
    model folder's p/b/m detector (``bilabial.folder_detector``), sealing as the pipeline does; ``opening``: its
    mouth-opening head (``opening.folder_opening_head``), guiding the jaw as the pipeline does."""
    return evaluate_seals(model, examples, rig, (seal,), detector, opening)[0]


def evaluate_seals(model, examples: list[Example], rig, seals, detector=None, opening=None) -> list[dict]:
    """:func:`evaluate` for each seal window in ``seals``; the decoder and the reference motion run once."""
    from .. import metrics
    from ..mediapipe_points import LIPS
    from ..motion_file import MotionTrack
    from .bilabial import seal_detected_bilabials

    decoded = []
    for ex in examples:
        ref = ex.utterance.motion(rig)
        bilabial = None if detector is None else detector.probability(ex.features, ex.utterance.audio, ref.n_frames)
        units, jaw, closure = decode(model, ex.features, ref.n_frames)
        if opening is not None:  # before the seal, as the pipeline guides it
            jaw = opening.guided_jaw(units, jaw, ex.utterance.unit_names, ex.utterance.audio, ref.n_frames)
        decoded.append((ex, ref, (units, jaw, closure), bilabial))
    reports = []
    for seal in seals:
        lve, closed, total, offsets, corr = [], 0, 0, [], []
        for ex, ref, raw, bilabial in decoded:
            units, jaw = apply_seal(*raw, ex.utterance.unit_names, seal)
            if bilabial is not None:
                units, jaw, _ = seal_detected_bilabials(units, jaw, ex.utterance.unit_names, bilabial, ref.fps,
                                                        detector.threshold, detector.jaw_gate)
            pose = np.zeros((len(jaw), 5, 3), np.float32)
            pose[:, 2, 0] = jaw
            pred = MotionTrack(fps=ref.fps, points=rig.points(units, pose), point_ids=ref.point_ids,
                               neutral=ref.neutral, phonemes=ref.phonemes)
            lve.append(metrics.lip_vertex_error(pred.select(LIPS), ref.select(LIPS)).mm)
            closure = metrics.bilabial_closure_rate(pred)
            closed += closure.count - len(closure.missed)
            total += closure.count
            offsets.append(metrics.mouth_av_offset_frames(pred, ref))
            corr.append(metrics.mouth_opening_correlation(pred, ref).value)
        reports.append({"utterances": len(examples), "lip_vertex_error_mm": float(np.mean(lve)),
                        "bilabial_closure_rate": closed / max(total, 1), "bilabials": total,
                        "av_offset_frames_mean": float(np.mean(offsets)),
                        "av_offset_frames_max_abs": int(np.max(np.abs(offsets))),
                        "mouth_open_corr": float(np.mean(corr))})
    return reports


def calibrate_seal(model, examples: list[Example], rig, candidates=SEAL_CANDIDATES,
                   min_closure: float = MIN_CLOSURE_RATE) -> tuple[tuple[float, float], list[dict]]:
    """The seal window with the lowest lip vertex error on ``examples`` (held-out, never the test set) among
    those that keep the bilabial closure rate ≥ ``min_closure``; the best-closing window if none does.
    Returns the window and one evaluation row per candidate."""
    rows = [{"from": start, "full": full, **report}
            for (start, full), report in zip(candidates, evaluate_seals(model, examples, rig, candidates))]
    closing = [r for r in rows if r["bilabial_closure_rate"] >= min_closure]
    best = min(closing, key=lambda r: r["lip_vertex_error_mm"]) if closing else max(rows, key=lambda r: r["bilabial_closure_rate"])
    return (best["from"], best["full"]), rows
