"""Train and evaluate the learned video face model on a rendered video corpus (``data render-videos``).

Data: the tracked videos and their ground truth come from :mod:`.video_corpus`. The corpus's ``heldout``
entries are never read by training; a validation subset of the ``train`` entries drives early stopping.

Metrics (:func:`evaluate`): head-pose error (mean geodesic angle of R_predᵀ·R_gt, degrees), unit RMSE,
landmark RMSE (the default head posed with GT vs predicted units, mm), 7-class accuracy of a nearest-centroid
classifier on the recovered units, and error growth under a lighting change.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from ..lbs import rodrigues_np
from .real_face_loss import RealLossWeights
from .track_arrays import TrackArrays, mirror_rotation, mirror_track, unit_mirror
from .video_corpus import VideoExample, is_validation, load_video_examples


# ------------------------------------------------------------------------------------------ training


@dataclass
class LossWeights:
    units: float = 1.0  # RMSE of the 52 units
    landmarks_mm: float = 0.1  # RMSE (mm) of the default head's 468 face points, GT vs predicted units
    rotation_deg: float = 0.05  # geodesic angle of the corrected head rotation


@dataclass
class _Arrays:
    vertex: np.ndarray  # (T, 478, 5)
    frame: np.ndarray  # (T, 8)
    units: np.ndarray  # (T, U)
    rotation: np.ndarray  # (T, 3)
    crops: np.ndarray | None  # (T, S, S) uint8


def _arrays(examples: list[VideoExample], mirror: bool = False) -> list[_Arrays]:
    """Features and targets per video; with ``mirror`` also each video's left–right mirror image, units and
    pose. The tracker's mirror pass makes the mirrored track what tracking the flipped video gives (one
    MediaPipe pass alone is not mirror-symmetric: 2.5° apart on a flipped corpus video), so its pose error is
    the mirror of the original's and the pose correction can learn from both."""
    from .video_model import track_features

    out = []
    for ex in examples:
        vertex, frame = track_features(ex.track)
        out.append(_Arrays(vertex, frame, ex.units, ex.rotation, ex.track.face_crops))
        if mirror:
            mirrored = mirror_track(ex.track)
            vertex, frame = track_features(mirrored)
            swap = unit_mirror(ex.unit_names)
            out.append(_Arrays(vertex, frame, ex.units[:, swap], mirror_rotation(ex.rotation), mirrored.face_crops))
    return out


@dataclass
class LandmarkBasis:
    rest: np.ndarray  # (P, 3) mm: the default head's face points at rest
    basis: np.ndarray  # (U, P, 3) mm per unit
    mediapipe_index: np.ndarray  # (P,) each point's MediaPipe face-mesh index

    @property
    def eye_corner_distance_mm(self) -> float:
        from ..mediapipe_points import EYE_OUTER_CORNERS

        row = {int(m): i for i, m in enumerate(self.mediapipe_index)}
        a, b = (row[c] for c in EYE_OUTER_CORNERS)
        return float(np.linalg.norm(self.rest[a] - self.rest[b]))


def landmark_basis(unit_names: tuple[str, ...]) -> LandmarkBasis:
    """The default head's 468 face points at rest and per unit, millimetres. With the joints at rest the landmark
    rig is linear in the units, so this is exact for any unit vector."""
    from ..heads import create
    from ..landmark_rig import LandmarkRig

    head = create("default")
    if tuple(head.expression_names) != tuple(unit_names):
        raise LatticeTalkError("the corpus's units are not the default head's expression basis")
    rig = LandmarkRig(head)
    face = np.flatnonzero(np.asarray(rig.mediapipe_index) < 468)
    n = len(unit_names)
    pts = rig.points(np.concatenate([np.zeros((1, n)), np.eye(n)]).astype(np.float32), np.zeros((n + 1, 5, 3), np.float32))
    pts = pts[:, face] * 1000.0
    return LandmarkBasis(pts[0].astype(np.float32), (pts[1:] - pts[0]).astype(np.float32),
                         np.asarray(rig.mediapipe_index)[face])


def _batch(data: list[_Arrays], rng: np.random.Generator, size: int, window: int, noise: float = 0.0):
    import torch

    vs, fs, us, rs, cs = [], [], [], [], []
    for i in rng.integers(0, len(data), size):
        a = data[i]
        start = int(rng.integers(0, max(1, len(a.units) - window + 1)))
        sl = slice(start, start + window)
        vertex = a.vertex[sl]
        if noise:
            vertex = vertex + rng.normal(0, noise, vertex.shape).astype(np.float32) * (1.0, 1.0, 1.0, 0.2, 0.2)
        vs.append(vertex), fs.append(a.frame[sl]), us.append(a.units[sl]), rs.append(a.rotation[sl])
        cs.append(None if a.crops is None else a.crops[sl])
    crops = None if any(c is None for c in cs) else torch.from_numpy(np.stack(cs))
    return (*(torch.from_numpy(np.stack(x).astype(np.float32)) for x in (vs, fs, us, rs)), crops)


def video_loss(net, batch, basis, weights: LossWeights = LossWeights()):
    """Total loss and its parts (units RMSE, landmark RMSE mm, rotation degrees) for one batch."""
    import torch

    from ..lbs import rodrigues_torch
    from .video_model import corrected_rotation, rotation_angle

    vertex, frame, units, rotation, crops = batch
    pred_units, correction = net(vertex, frame, crops)
    # RMSE, not L1: most units are 0 most of the time, and L1 pulls every unit to that median
    l_units = torch.sqrt(((pred_units - units) ** 2).mean() + 1e-8)
    delta = torch.einsum("btu,upc->btpc", pred_units - units, basis)
    l_mm = torch.sqrt((delta * delta).sum(-1).mean() + 1e-8)
    angle = rotation_angle(corrected_rotation(frame[..., :3], correction), rodrigues_torch(rotation))
    l_rot = torch.rad2deg(angle).mean()
    total = weights.units * l_units + weights.landmarks_mm * l_mm + weights.rotation_deg * l_rot
    return total, {"units_rmse": l_units.item(), "landmark_mm": l_mm.item(), "rotation_deg": l_rot.item()}


def _validation_batches(data: list[_Arrays]):
    import torch

    return [(*(torch.from_numpy(x[None].astype(np.float32)) for x in (a.vertex, a.frame, a.units, a.rotation)),
             None if a.crops is None else torch.from_numpy(np.ascontiguousarray(a.crops[None])))
            for a in data]


def train_video_model(corpus_dir: str | Path, out_dir: str | Path, epochs: int = 40, steps_per_epoch: int = 60,
                      batch_size: int = 8, window: int = 24, lr: float = 2e-3, seed: int = 0, patience: int = 8,
                      config=None, weights: LossWeights = LossWeights(), noise: float = 0.003, mirror: bool = True,
                      minutes: float | None = None, init_from: str | Path | None = None, face_crops: bool = True,
                      splits: tuple[str, ...] = ("train",), real_tracks: list[TrackArrays] | None = None,
                      real_weights: RealLossWeights = RealLossWeights(),
                      progress: Callable[[int, dict], None] | None = None) -> dict:
    """Train on the corpus's entries in ``splits`` (a validation subset of them for early stopping), keep the
    best validation checkpoint in ``out_dir`` as the shipped format, resume if a run is there; returns the history.

    ``minutes`` stops after that long (at an epoch end, checkpointed): run again to continue. ``init_from``: a
    model folder to fine-tune (its architecture, weights and feature normalisation; a fresh optimizer and
    schedule over ``epochs``), e.g. the shipped model on a larger corpus. ``face_crops``: the net also reads the
    tracker's face crops (a key-points-only ``init_from`` model gets the crop encoder added, starting from its
    own predictions: :func:`~.video_model.with_face_crops`). ``splits=("train", "heldout")`` trains on the
    held-out entries too: for a final model whose test numbers come from another corpus (one rendered with
    ``heldout_share=1``, scored with ``evaluate_models(..., centroids_from=...)``). ``real_tracks``: tracked videos
    of real people (:func:`~.video_corpus.track_folder`); each step then adds the self-supervised loss of
    :mod:`.real_face_loss` on as many of their windows (half of them mirror images), and a validation subset of them
    (by list position, :func:`~.video_corpus.is_validation`) joins the validation loss."""
    import torch

    from .video_model import VideoModelConfig, save_face_model

    start_time = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_ex, val_ex = _train_validation_examples(corpus_dir, splits)
    names = train_ex[0].unit_names
    train, val = _arrays(train_ex, mirror), _arrays(val_ex)
    landmarks = landmark_basis(names)
    basis = torch.from_numpy(landmarks.basis)
    real = _RealData.of(real_tracks or [], landmarks, names, real_weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "train_state.json"
    resume = state_path.exists()
    if resume:
        state = json.loads(state_path.read_text())
        config = VideoModelConfig.from_json(state["model"])
    net, config = _initial_net(config, init_from if not resume else None, resume, face_crops, names, train)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.1)
    history = {"train": [], "validation": [], "validation_parts": [], "best_epoch": -1, "best": float("inf"),
               "seconds": 0.0}
    start_epoch = 0
    if resume:
        history, start_epoch = state["history"], state["epoch"] + 1
        _load_last(out_dir, net, optimizer, schedule)
        rng = np.random.default_rng(seed + start_epoch)
    val_batches = _validation_batches(val)
    facts = {"corpus": str(Path(corpus_dir).resolve()), "train_videos": len(train_ex), "validation_videos": len(val_ex),
             "train_frames": int(sum(len(a.units) for a in train)), "splits": list(splits), "seed": seed, "lr": lr,
             "batch_size": batch_size, "window": window, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
             "noise": noise, "mirror": mirror,
             "loss_weights": weights.__dict__, "init_from": str(init_from) if init_from is not None else None}
    if real is not None:
        facts.update(real_videos=[t.source for t in real_tracks], real_train_frames=real.train_frames,
                     real_validation_videos=len(real.validation), real_loss_weights=real_weights.__dict__)
    for epoch in range(start_epoch, epochs):
        epoch_start = time.perf_counter()
        train_loss = _train_epoch(net, optimizer, schedule, train, rng, basis, weights, steps_per_epoch, batch_size,
                                  window, noise, real)
        held, parts = _validate(net, val_batches, basis, weights, real)
        history["train"].append(train_loss)
        history["validation"].append(held)
        history["validation_parts"].append(parts)
        history["seconds"] += time.perf_counter() - epoch_start
        _save_last(out_dir, net, optimizer, schedule)
        if held < history["best"]:
            history["best"], history["best_epoch"] = held, epoch
            save_face_model(net, out_dir, names, extra={
                "model_id": f"{Path(out_dir).name}-e{epoch}", "epoch": epoch, "validation_loss": held,
                "validation_parts": parts, "training": facts})
        state_path.write_text(json.dumps({"epoch": epoch, "history": history, "model": config.to_json()}))
        if progress is not None:
            progress(epoch, {"train": history["train"][-1], "validation": held, **parts})
        if epoch - history["best_epoch"] >= patience:
            history["stopped"] = "early stopping"
            break
        if minutes is not None and time.perf_counter() - start_time > minutes * 60:
            history["stopped"] = f"time limit ({minutes} min); run again to resume"
            break
    if history["best_epoch"] >= 0:  # a model was saved
        history["pose_smoothing_s"] = choose_pose_smoothing(out_dir, val_ex)
    return history


def _train_validation_examples(corpus_dir: str | Path, splits: tuple[str, ...]) -> tuple[list[VideoExample], list[VideoExample]]:
    """The tracked videos in ``splits``, as training and validation examples (by :func:`is_validation`)."""
    examples = load_video_examples(corpus_dir, splits)
    if not examples:
        raise LatticeTalkError(f"{corpus_dir}: no tracked videos in {'/'.join(splits)}; run 'python -m lattice_talk "
                               "video track' (or 'video train', which tracks first)")
    train_ex = [e for e in examples if not is_validation(e.index)] or examples  # a tiny corpus may be all validation
    val_ex = [e for e in examples if is_validation(e.index)] or train_ex[-1:]
    return train_ex, val_ex


def _initial_net(config, init_from: str | Path | None, resume: bool, face_crops: bool, names: tuple[str, ...],
                 train: list[_Arrays]):
    """The net to train and its config: ``init_from``'s model to fine-tune, or a new net with ``config``
    (a resumed run's config; its normalisation comes back with its weights)."""
    from .video_model import CROP_SIZE, VideoFaceNet, VideoModelConfig, load_net, with_face_crops

    if init_from is not None:
        net, init_config = load_net(init_from)
        if tuple(init_config["unit_names"]) != names:
            raise LatticeTalkError(f"{init_from}: the model's units differ from the corpus's; train from scratch")
        if face_crops and not net.config.face_crop:
            net = with_face_crops(net)
        config = net.config
    else:
        if not resume:  # a copy: the caller's config stays as given
            config = dataclasses.replace(config or VideoModelConfig(), n_units=len(names),
                                         face_crop=CROP_SIZE if face_crops else 0)
        net = VideoFaceNet(config)  # a resumed run's normalisation comes back with its weights below
        net.set_normalisation(np.concatenate([a.vertex for a in train]), np.concatenate([a.frame for a in train]))
    return net, config


def _save_last(out_dir: Path, net, optimizer, schedule) -> None:
    """The latest epoch's weights, optimizer and schedule, for a run to resume from."""
    import torch
    from safetensors.torch import save_file

    from .video_model import state_tensors

    save_file(state_tensors(net), str(out_dir / "last.safetensors"))
    torch.save(optimizer.state_dict(), out_dir / "optimizer.pt")
    torch.save(schedule.state_dict(), out_dir / "schedule.pt")


def _load_last(out_dir: Path, net, optimizer, schedule) -> None:
    """Restore what :func:`_save_last` wrote."""
    import torch
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(out_dir / "last.safetensors")))
    optimizer.load_state_dict(torch.load(out_dir / "optimizer.pt", weights_only=True))
    schedule.load_state_dict(torch.load(out_dir / "schedule.pt", weights_only=True))


@dataclass
class _RealData:
    """Real videos for :mod:`.real_face_loss`: training and validation pairs (each video with its mirror image)."""

    train: list
    validation: list
    basis: object  # torch (U, P, 3)
    unit_swap: np.ndarray
    weights: RealLossWeights
    point_weights: object  # torch (P,): the motion term's weight of each point

    @classmethod
    def of(cls, tracks: list[TrackArrays], landmarks: LandmarkBasis, names: tuple[str, ...],
           weights: RealLossWeights) -> "_RealData | None":
        import torch

        from .real_face_loss import real_pairs, upper_face_balance

        if not tracks:
            return None
        pairs = real_pairs(tracks, landmarks.mediapipe_index, landmarks.eye_corner_distance_mm)
        held = [is_validation(i) for i in range(len(pairs))]
        train = [p for p, h in zip(pairs, held) if not h] or pairs
        validation = [p for p, h in zip(pairs, held) if h] or pairs[-1:]
        return cls(train, validation, torch.from_numpy(landmarks.basis), unit_mirror(names), weights,
                   torch.from_numpy(upper_face_balance(landmarks.mediapipe_index)))

    @property
    def train_frames(self) -> int:
        return int(sum(len(a.reliable) for a, _ in self.train))

    def loss(self, net, batch):
        from .real_face_loss import real_face_loss

        return real_face_loss(net, batch, self.basis, self.unit_swap, self.weights, self.point_weights)


def _train_epoch(net, optimizer, schedule, train: list[_Arrays], rng: np.random.Generator, basis, weights: LossWeights,
                 steps: int, batch_size: int, window: int, noise: float, real: _RealData | None = None) -> float:
    """``steps`` optimizer steps on random windows of ``train`` (and of the real videos); the mean training loss."""
    from ..training import optimizer_step
    from .real_face_loss import real_batch

    net.train()
    losses = []
    for _ in range(steps):
        loss, _ = video_loss(net, _batch(train, rng, batch_size, window, noise), basis, weights)
        if real is not None:
            loss = loss + real.loss(net, real_batch(real.train, rng, max(1, batch_size // 2), window))[0]
        losses.append(optimizer_step(net, optimizer, schedule, loss))
    return float(np.mean(losses))


def _validate(net, val_batches, basis, weights: LossWeights, real: _RealData | None = None) -> tuple[float, dict]:
    """Mean validation loss and its mean parts over the whole validation videos (rendered, and real when given:
    their loss is added to the rendered one, as in training)."""
    import torch

    from .real_face_loss import real_batch

    net.eval()
    with torch.no_grad():
        results = [video_loss(net, b, basis, weights) for b in val_batches]
        held = float(np.mean([float(r[0]) for r in results]))
        parts = {k: float(np.mean([r[1][k] for r in results])) for k in results[0][1]}
        if real is not None:  # each whole video and its mirror image, one at a time
            whole = [real.loss(net, real_batch([p], np.random.default_rng(0), 1, len(p[0].reliable)))
                     for p in real.validation]
            held += float(np.mean([float(r[0]) for r in whole]))
            parts.update({k: float(np.mean([r[1][k] for r in whole])) for k in whole[0][1]})
    return held, parts


POSE_SMOOTHING_CHOICES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # seconds


def choose_pose_smoothing(model_dir: str | Path, examples: list[VideoExample]) -> float:
    """Pick the smoothing window of the saved model's pose (``POSE_SMOOTHING_CHOICES``) with the least mean pose
    error on ``examples`` (the validation videos) and write it into its ``video_model.json``; returns it."""
    from ..video.head_pose import smooth
    from .video_model import MODEL_CONFIG, LearnedFaceModel, load_net

    net, config = load_net(model_dir)
    model = LearnedFaceModel(net, config, pose_smoothing=0.0)
    raw = [(model.predict_arrays(ex.track)[1], ex) for ex in examples]
    errors = {w: float(np.concatenate([pose_error_deg(smooth(r, ex.track.fps, w), ex.rotation) for r, ex in raw]).mean())
              for w in POSE_SMOOTHING_CHOICES}
    best = min(errors, key=errors.get)
    config.update(pose_smoothing_s=best, pose_smoothing_validation_deg={f"{w:g}": round(e, 4) for w, e in errors.items()})
    (Path(model_dir) / MODEL_CONFIG).write_text(json.dumps(config, indent=2))
    return best


# ------------------------------------------------------------------------------------------ evaluation

CLASS_EXCLUDED_PREFIXES = ("eyeBlink", "eyeLook")  # blinks and gaze say nothing about the expression class


def pose_error_deg(pred_rotvec: np.ndarray, true_rotvec: np.ndarray) -> np.ndarray:
    """Per frame, the angle (degrees) of R_predᵀ·R_true."""
    pred, true = (rodrigues_np(np.asarray(r, np.float64)) for r in (pred_rotvec, true_rotvec))
    d = np.swapaxes(pred, -1, -2) @ true
    cos = (np.trace(d, axis1=-2, axis2=-1) - 1) / 2
    skew = np.stack([d[..., 2, 1] - d[..., 1, 2], d[..., 0, 2] - d[..., 2, 0], d[..., 1, 0] - d[..., 0, 1]], -1)
    return np.degrees(np.arctan2(np.linalg.norm(skew, axis=-1) / 2, cos))


def nearest_centroid(train_vectors: np.ndarray, train_labels: list[str], test_vectors: np.ndarray) -> list[str]:
    """Label of the nearest class mean (Euclidean) for each test vector."""
    classes = sorted(set(train_labels))
    labels = np.asarray(train_labels)
    centroids = np.stack([np.asarray(train_vectors)[labels == c].mean(axis=0) for c in classes])
    dist = np.linalg.norm(np.asarray(test_vectors)[:, None] - centroids[None], axis=-1)
    return [classes[i] for i in dist.argmin(axis=1)]


def peak_vector(units: np.ndarray, apex_frame: int | None, unit_names: tuple[str, ...]) -> np.ndarray:
    """A clip's expression as one vector: recovered units averaged over its peak frames (the ground-truth
    apex frame to the end: the expression is held there), blink and gaze units left out."""
    keep = [i for i, n in enumerate(unit_names) if not n.startswith(CLASS_EXCLUDED_PREFIXES)]
    start = min(int(apex_frame or 0), len(units) - 1)
    return units[start:, keep].mean(axis=0)


@dataclass
class _VideoScore:
    name: str
    index: int
    kind: str
    label: str | None
    relit: bool
    pose_deg: np.ndarray
    units_rmse: float
    landmark_rmse_mm: float
    peak: np.ndarray
    seconds: float


def _score(model, ex: VideoExample, rig_points: Callable[[np.ndarray], np.ndarray]) -> _VideoScore:
    start = time.perf_counter()
    face = model.predict(ex.track)
    seconds = time.perf_counter() - start
    if tuple(face.unit_names) != ex.unit_names:
        raise LatticeTalkError(f"{getattr(model, 'model_id', model)}: units differ from the corpus's")
    units = np.asarray(face.units, np.float32)
    diff = rig_points(units) - rig_points(ex.units)
    return _VideoScore(ex.name, ex.index, ex.kind, ex.label, ex.relit, pose_error_deg(face.head_rotation, ex.rotation),
                       float(np.sqrt(np.mean((units - ex.units) ** 2))),
                       float(np.sqrt(np.mean(np.sum(diff**2, axis=-1)))), peak_vector(units, ex.apex_frame, ex.unit_names),
                       seconds)


def evaluate_models(models: dict[str, object], corpus_dir: str | Path,
                    progress: Callable[[str, int, int], None] | None = None,
                    centroids_from: str | Path | None = None) -> dict:
    """Held-out metrics of each model (name → VideoFaceModel) on the corpus's held-out videos; the classifier's
    centroids come from each model's own recovered units on the training expression clips of ``centroids_from``
    (default: the same corpus; a corpus rendered all held out takes them from another; without any, the 7-class
    accuracy is left out)."""
    heldout = load_video_examples(corpus_dir, ("heldout",))
    centroid_corpus = corpus_dir if centroids_from is None else centroids_from
    train_expr = [e for e in load_video_examples(centroid_corpus, ("train",), kinds=("expression",)) if not e.relit]
    if not heldout:
        raise LatticeTalkError(f"{corpus_dir}: no tracked held-out videos")
    landmarks = landmark_basis(heldout[0].unit_names)

    def rig_points(units: np.ndarray) -> np.ndarray:  # (T, U) → (T, 468, 3) mm
        return landmarks.rest + np.einsum("tu,upc->tpc", units, landmarks.basis)

    results: dict = {"corpus": str(Path(corpus_dir).resolve()), "heldout_videos": len(heldout),
                     "centroids_from": str(Path(centroid_corpus).resolve()), "centroid_clips": len(train_expr), "models": {}}
    for name, model in models.items():
        scores = []
        for i, ex in enumerate(heldout):
            scores.append(_score(model, ex, rig_points))
            if progress is not None:
                progress(name, i + 1, len(heldout))
        centroid_scores = [_score(model, ex, rig_points) for ex in train_expr]
        results["models"][name] = _summarise(scores, centroid_scores, getattr(model, "model_id", name))
    return results


def _summarise(scores: list[_VideoScore], centroid_scores: list[_VideoScore], model_id: str) -> dict:
    normal = [s for s in scores if not s.relit]
    frames = sum(len(s.pose_deg) for s in normal)
    pose = np.concatenate([s.pose_deg for s in normal])
    pose_clips = [s for s in normal if s.kind == "pose"]
    out = {
        "model_id": model_id,
        "videos": len(normal),
        "frames": int(frames),
        "pose_error_deg_mean": float(pose.mean()),
        "pose_error_deg_median": float(np.median(pose)),
        "pose_error_deg_p95": float(np.percentile(pose, 95)),
        "pose_error_deg_mean_pose_clips": float(np.concatenate([s.pose_deg for s in pose_clips]).mean()) if pose_clips else None,
        "units_rmse": float(np.mean([s.units_rmse for s in normal])),
        "landmark_rmse_mm": float(np.mean([s.landmark_rmse_mm for s in normal])),
        "seconds_per_frame": float(sum(s.seconds for s in normal) / max(frames, 1)),
    }
    test = [s for s in normal if s.kind == "expression" and s.label]
    train = [s for s in centroid_scores if s.label]
    if test and train:
        predicted = nearest_centroid(np.stack([s.peak for s in train]), [s.label for s in train],
                                     np.stack([s.peak for s in test]))
        correct = [p == s.label for p, s in zip(predicted, test)]
        out.update(expression_accuracy=float(np.mean(correct)), expression_clips=len(test),
                   expression_train_clips=len(train),
                   expression_confusions=[f"{s.name}: {s.label}→{p}" for p, s in zip(predicted, test) if p != s.label])
        relit_expr = [s for s in scores if s.relit and s.kind == "expression" and s.label]
        if relit_expr:
            relit_pred = nearest_centroid(np.stack([s.peak for s in train]), [s.label for s in train],
                                          np.stack([s.peak for s in relit_expr]))
            out["expression_accuracy_relit"] = float(np.mean([p == s.label for p, s in zip(relit_pred, relit_expr)]))
            out["expression_clips_relit"] = len(relit_expr)
    by_index = {s.index: s for s in normal}
    pairs = [(by_index[s.index], s) for s in scores if s.relit and s.index in by_index]
    if pairs:
        out["lighting_pairs"] = len(pairs)
        for key in ("landmark_rmse_mm", "units_rmse", "pose"):
            def err(s):
                return float(s.pose_deg.mean()) if key == "pose" else getattr(s, key)
            base, relit = np.mean([err(a) for a, _ in pairs]), np.mean([err(b) for _, b in pairs])
            out[f"lighting_growth_{key}"] = float((relit - base) / max(base, 1e-9))
    return out


TABLE_ROWS = (
    ("head pose error, mean (°)", "pose_error_deg_mean", "{:.2f}"),
    ("head pose error, median (°)", "pose_error_deg_median", "{:.2f}"),
    ("head pose error, 95th pct (°)", "pose_error_deg_p95", "{:.2f}"),
    ("head pose error, 'pose' clips ±30° (°)", "pose_error_deg_mean_pose_clips", "{:.2f}"),
    ("unit RMSE (0..1)", "units_rmse", "{:.3f}"),
    ("landmark RMSE, default head (mm)", "landmark_rmse_mm", "{:.2f}"),
    ("7-class accuracy, nearest centroid", "expression_accuracy", "{:.1%}"),
    ("7-class accuracy, relit videos", "expression_accuracy_relit", "{:.1%}"),
    ("lighting error growth, landmarks", "lighting_growth_landmark_rmse_mm", "{:+.1%}"),
    ("lighting error growth, units", "lighting_growth_units_rmse", "{:+.1%}"),
    ("lighting error growth, pose", "lighting_growth_pose", "{:+.1%}"),
    ("inference ms / frame (after tracking)", "seconds_per_frame", "ms"),
)


def format_results(results: dict) -> str:
    """The held-out metrics of every model as one text table (models side by side)."""
    names = list(results["models"])
    rows = [["metric", *names]]
    for label, key, fmt in TABLE_ROWS:
        cells = []
        for name in names:
            value = results["models"][name].get(key)
            cells.append("—" if value is None else f"{value * 1000:.2f}" if fmt == "ms" else fmt.format(value))
        rows.append([label, *cells])
    rows.append(["held-out videos (normal / expression / relit pairs)",
                 *[f"{m['videos']} / {m.get('expression_clips', 0)} / {m.get('lighting_pairs', 0)}"
                   for m in results["models"].values()]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
