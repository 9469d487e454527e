"""The learned video face model: tracked video → the default head's 52 ARKit units + head rotation.

Per frame, a :class:`~core.motion.meshconv.MeshEncoder` (spiral convolutions on MediaPipe's 478-point face
mesh) reads per-vertex features; a dilated temporal convolution over the frames follows; two heads give
the units (0..1) and a head-rotation correction δ (axis-angle, camera frame) applied to the
tracker's rigid pose, R = exp(δ)·R_tracker. The correction layer starts at zero, so an untrained model's
pose is the tracker's. The units are regressed without a bound and clamped to 0..1 when predicting (a
sigmoid head trained on mostly-zero units saturated at 0 and stopped learning).

Inputs (:func:`track_features`, numpy), all normalised by face size so they do not depend on resolution
or distance:

* per vertex (478 × 5): the pose-free points (``points_metric``, canonical head frame) scaled so the
  video's inter-ocular distance (outer canthi, median over confidently tracked frames) equals the
  canonical face's, minus the **reference** — MediaPipe's canonical face model (vendored) for the 468
  face points, the canonical eye-contour centre for each eye's 5 iris points — in units of the canonical
  inter-ocular distance (3 channels); and the optical flow at the point, in inter-ocular distances of
  that frame's image (2 channels).
* per frame (8): the tracker's head rotation (axis-angle), the eye closure (left, right), the face
  centre in the image (x − ½, y − ½) and the face's size (image inter-ocular distance / image width).

A fixed reference (not a per-video neutral) keeps expressions that are held through a whole clip
visible; the price is that a real speaker's own proportions read as a constant offset. Feature means and
standard deviations from the training set are buffers of the model, saved with it.

Files (``save_face_model`` / ``load_face_model``): ``video_model.safetensors`` (fp16) + ``video_model.json``
(architecture, unit names, feature version, topology digest, training facts). The loader refuses a file
made for another face-mesh topology, feature layout or unit set with a clear message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import LatticeTalkError
from ..lbs import rodrigues_torch
from ..mediapipe_points import EYE_OUTER_CORNERS, EYES
from ..video.face_crop import CROP_SIZE, MARGIN
from .video_face import VIDEO_MODEL_WEIGHTS, VideoFace
from .meshconv import MeshEncoder
from .topology import N_FACE_POINTS, N_POINTS, FaceMeshGraph

MODEL_CONFIG = "video_model.json"
FEATURES = "video_features/1"  # bump when track_features changes meaning
VERTEX_CHANNELS, FRAME_CHANNELS = 5, 8
FLOW_SCALE = 10.0  # flow per frame is a few % of the inter-ocular distance
RIGHT_IRIS, LEFT_IRIS = range(468, 473), range(473, 478)
CROP_FEATURES = 32


class VideoModelError(LatticeTalkError):
    """A video model file that cannot be used (missing, damaged, or made for other inputs)."""


# ------------------------------------------------------------------------------------------ features


@lru_cache(maxsize=1)
def reference_points() -> np.ndarray:
    """(478, 3) metres: MediaPipe's canonical face, with each eye's contour centre standing in for its iris."""
    from ..video.canonical import canonical_points

    canon = canonical_points()
    iris_right, iris_left = canon[list(EYES[:16])].mean(axis=0), canon[list(EYES[16:])].mean(axis=0)
    ref = np.concatenate([canon, np.repeat(iris_right[None], 5, 0), np.repeat(iris_left[None], 5, 0)])
    return ref.astype(np.float32)


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """(..., P, D) → (...,) distance between the outer eye corners."""
    a, b = EYE_OUTER_CORNERS
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)


def track_features(track) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478, 5) per-vertex and (T, 8) per-frame features of a tracked video (see the module doc)."""
    metric = np.asarray(track.points_metric, np.float32)
    points = np.asarray(track.points, np.float32)
    confidence = np.asarray(track.confidence, np.float32)
    if metric.ndim != 3 or metric.shape[1:] != (N_POINTS, 3):
        raise VideoModelError(f"expected (T, {N_POINTS}, 3) tracked points, got {metric.shape}")
    ref = reference_points()
    ref_iod = float(inter_ocular(ref))
    reliable = confidence > 0
    iod = inter_ocular(metric[reliable] if reliable.sum() >= 3 else metric)
    scale = ref_iod / max(float(np.median(iod)), 1e-6)
    offsets = (metric * scale - ref) / ref_iod
    size = np.array([track.width, track.height], np.float32)
    image_iod = np.maximum(inter_ocular(points[..., :2] * size), 1.0)  # pixels, per frame
    flow = np.asarray(track.flow, np.float32) * size / image_iod[:, None, None] * FLOW_SCALE
    vertex = np.concatenate([offsets, flow], axis=-1).astype(np.float32)
    centre = points[:, :N_FACE_POINTS, :2].mean(axis=1) - 0.5
    face_size = image_iod / float(track.width)  # nearer faces show more perspective
    frame = np.concatenate([np.asarray(track.head_rotation, np.float32), np.asarray(track.eye_closure, np.float32),
                            centre, face_size[:, None]], axis=-1).astype(np.float32)
    return vertex, frame


# ------------------------------------------------------------------------------------------ rotations (torch)


def rotation_angle(r_pred: torch.Tensor, r_true: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (radians) between rotation matrices, differentiable everywhere (atan2 form)."""
    d = r_pred.transpose(-1, -2) @ r_true
    cos = (d.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = torch.stack([d[..., 2, 1] - d[..., 1, 2], d[..., 0, 2] - d[..., 2, 0], d[..., 1, 0] - d[..., 0, 1]], -1)
    sin = torch.sqrt((skew * skew).sum(-1) + 1e-12) / 2
    return torch.atan2(sin, cos)


# ------------------------------------------------------------------------------------------ the network


@dataclass
class VideoModelConfig:
    n_units: int = 52
    mesh_channels: tuple[int, ...] = (16, 32, 32)
    embedding: int = 96
    hidden: int = 96
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4)
    spiral_length: int = 9
    dropout: float = 0.1
    video_context: bool = False  # add the mean over all frames (the whole clip's look) to every frame
    face_crop: int = 0  # features from the tracker's face crop (core.video.face_crop); 0: key points only

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict) -> VideoModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise VideoModelError(f"unknown video model settings {sorted(unknown)}: the file is from a newer LatticeTalk")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def topology_digest(spiral_length: int) -> str:
    """Digest of the face-mesh spiral table a model is built on (a file made for another mesh is refused)."""
    spirals = np.ascontiguousarray(FaceMeshGraph.mediapipe(iris=True).spirals(spiral_length), dtype=np.int64)
    return hashlib.sha256(spirals.tobytes()).hexdigest()[:16]


class FaceCropEncoder(nn.Module):
    """(..., S, S) uint8 grey face crops → (..., features): each crop standardised (so exposure and contrast do
    not count), five stride-2 3×3 convolutions, the remaining 3×3 grid flattened (pose lives in where things
    are, which pooling would lose) and a linear layer."""

    def __init__(self, features: int, size: int, widths: tuple[int, ...] = (16, 32, 48, 64, 96)):
        super().__init__()
        self.size = size
        chans = (1, *widths)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        grid = size
        for _ in widths:
            grid = (grid + 1) // 2
        self.head = nn.Linear(widths[-1] * grid * grid, features)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        lead = crops.shape[:-2]
        if crops.shape[-2:] != (self.size, self.size):
            raise ValueError(f"expected (..., {self.size}, {self.size}) face crops, got {tuple(crops.shape)}")
        x = crops.reshape(-1, 1, self.size, self.size).float()
        mean, std = x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), keepdim=True)
        x = (x - mean) / (std + 1.0)
        for conv in self.convs:
            x = nn.functional.elu(conv(x))
        return self.head(x.flatten(1)).reshape(*lead, -1)


class VideoFaceNet(nn.Module):
    """(B, T, 478, 5) vertex features + (B, T, 8) frame features (+ (B, T, S, S) uint8 face crops when
    ``config.face_crop``) → units (B, T, U) (unbounded: clamp to 0..1 to use them) and a head rotation
    correction (B, T, 3), axis-angle in the camera frame."""

    def __init__(self, config: VideoModelConfig = VideoModelConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("vertex_mean", torch.zeros(N_POINTS, VERTEX_CHANNELS))
        self.register_buffer("vertex_std", torch.ones(N_POINTS, VERTEX_CHANNELS))
        self.register_buffer("frame_mean", torch.zeros(FRAME_CHANNELS))
        self.register_buffer("frame_std", torch.ones(FRAME_CHANNELS))
        self.encoder = MeshEncoder(VERTEX_CHANNELS, config.mesh_channels, config.embedding, config.spiral_length)
        self.crops = FaceCropEncoder(CROP_FEATURES, config.face_crop) if config.face_crop else None
        self.inp = nn.Linear(config.embedding + FRAME_CHANNELS + (CROP_FEATURES if config.face_crop else 0), config.hidden)
        self.blocks = nn.ModuleList(
            nn.Conv1d(config.hidden, config.hidden, config.kernel, dilation=d, padding=d * (config.kernel - 1) // 2)
            for d in config.dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(config.hidden) for _ in config.dilations)
        self.dropout = nn.Dropout(config.dropout)
        self.context = nn.Linear(config.hidden, config.hidden) if config.video_context else None
        self.units = nn.Linear(config.hidden, config.n_units)
        self.rotation = nn.Linear(config.hidden, 3)
        nn.init.zeros_(self.rotation.weight)
        nn.init.zeros_(self.rotation.bias)

    def set_normalisation(self, vertex: np.ndarray, frame: np.ndarray) -> None:
        """Feature statistics from training data: (N, 478, 5) and (N, 8) samples."""
        with torch.no_grad():
            self.vertex_mean.copy_(torch.from_numpy(vertex.mean(axis=0)))
            self.vertex_std.copy_(torch.from_numpy(np.maximum(vertex.std(axis=0), 1e-3)))
            self.frame_mean.copy_(torch.from_numpy(frame.mean(axis=0)))
            self.frame_std.copy_(torch.from_numpy(np.maximum(frame.std(axis=0), 1e-3)))

    def encode(self, vertex: torch.Tensor, frame: torch.Tensor, crops: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame embedding (..., hidden) — no temporal context yet."""
        parts = [self.encoder((vertex - self.vertex_mean) / self.vertex_std), (frame - self.frame_mean) / self.frame_std]
        if self.crops is not None:
            if crops is None:
                raise VideoModelError("this video model reads face crops; the track has none (track the video again)")
            parts.append(self.crops(crops))
        return self.inp(torch.cat(parts, dim=-1))

    def temporal(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, hidden) embeddings → unbounded units (B, T, U) and the rotation correction (B, T, 3).

        The units are regressed unbounded and clamped to 0..1 only in :meth:`LearnedFaceModel.predict_arrays`:
        a sigmoid trained on mostly-zero units saturates at 0 and its gradient dies (a first run collapsed to
        0.001 for every unit that way)."""
        for conv, norm in zip(self.blocks, self.norms):
            h = h + self.dropout(nn.functional.gelu(conv(norm(h).transpose(1, 2)).transpose(1, 2)))
        if self.context is not None:  # per-video biases (camera, lighting) are constant over the clip
            h = h + self.context(h.mean(dim=1, keepdim=True))
        return self.units(h), self.rotation(h)

    def forward(self, vertex: torch.Tensor, frame: torch.Tensor,
                crops: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.temporal(self.encode(vertex, frame, crops))


def with_face_crops(net: VideoFaceNet) -> VideoFaceNet:
    """A copy of a key-points-only net with a face-crop encoder added, predicting exactly what it did: the
    crop features enter ``inp`` through zero weights, so fine-tuning starts from the old model's output."""
    grown = VideoFaceNet(replace(net.config, face_crop=CROP_SIZE))
    state = net.state_dict()
    weight = state["inp.weight"]
    state["inp.weight"] = torch.cat([weight, weight.new_zeros(weight.shape[0], CROP_FEATURES)], dim=1)
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("crops.") for k in missing):
        raise VideoModelError(f"cannot add face crops to this net (missing {missing}, unexpected {unexpected})")
    return grown


def corrected_rotation(tracker_rotvec: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
    """R = exp(δ)·R_tracker as matrices (..., 3, 3)."""
    return rodrigues_torch(correction) @ rodrigues_torch(tracker_rotvec)


# ------------------------------------------------------------------------------------------ files


def state_tensors(net: nn.Module, half: bool = False) -> dict[str, torch.Tensor]:
    """The state dict as separate tensors (the spiral tables are shared between layers; safetensors needs
    one copy per name), floats in fp16 with ``half``."""
    return {k: (v.half() if half and v.is_floating_point() else v).clone().contiguous() for k, v in net.state_dict().items()}


def save_face_model(net: VideoFaceNet, folder: str | Path, unit_names: tuple[str, ...], extra: dict | None = None) -> Path:
    """fp16 safetensors + JSON config in ``folder``; returns the weights path."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(unit_names) != net.config.n_units:
        raise VideoModelError(f"{len(unit_names)} unit names for a model with {net.config.n_units} units")
    weights = folder / VIDEO_MODEL_WEIGHTS
    save_file(state_tensors(net, half=True), str(weights))
    config = {"format": "lattice_talk.video_model/1", "model": net.config.to_json(), "features": FEATURES,
              "topology": {"vertices": N_POINTS, "spiral_length": net.config.spiral_length,
                           "digest": topology_digest(net.config.spiral_length)},
              "unit_names": list(unit_names), **(extra or {})}
    if net.config.face_crop:
        config["face_crop"] = {"size": net.config.face_crop, "margin": MARGIN}
    (folder / MODEL_CONFIG).write_text(json.dumps(config, indent=2))
    return weights


def load_net(folder: str | Path) -> tuple[VideoFaceNet, dict]:
    """The network (fp32, eval mode) and its config; refuses files made for other inputs."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / MODEL_CONFIG).read_text())
        state = load_file(str(folder / VIDEO_MODEL_WEIGHTS))
    except (OSError, ValueError) as exc:
        raise VideoModelError(f"{folder}: no usable video model ({exc}); train one with "
                              "'python -m lattice_talk video train'") from exc
    if config.get("features") != FEATURES:
        raise VideoModelError(f"{folder}: the model reads features {config.get('features')!r}, this LatticeTalk "
                              f"computes {FEATURES!r}; retrain it with 'python -m lattice_talk video train'")
    model_config = VideoModelConfig.from_json(config["model"])
    topo = config.get("topology", {})
    expected = {"vertices": N_POINTS, "spiral_length": model_config.spiral_length,
                "digest": topology_digest(model_config.spiral_length)}
    if topo != expected:
        raise VideoModelError(f"{folder}: the model was made for another face-mesh topology ({topo}, this "
                              f"LatticeTalk has {expected}); retrain it with 'python -m lattice_talk video train'")
    crop = {"size": CROP_SIZE, "margin": MARGIN}
    if model_config.face_crop and (model_config.face_crop != CROP_SIZE or config.get("face_crop") != crop):
        raise VideoModelError(f"{folder}: the model reads face crops {config.get('face_crop')}, this LatticeTalk's "
                              f"tracker cuts {CROP_SIZE} px at margin {MARGIN}; retrain it with 'python -m lattice_talk video train'")
    if len(config.get("unit_names", ())) != model_config.n_units:
        raise VideoModelError(f"{folder}: {len(config.get('unit_names', ()))} unit names for {model_config.n_units} units")
    net = VideoFaceNet(model_config)
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise VideoModelError(f"{folder}: the weights do not match the config ({str(exc).splitlines()[0]})") from exc
    net.eval()
    return net, config


class LearnedFaceModel:
    """:class:`~core.motion.face_models.VideoFaceModel` backed by :class:`VideoFaceNet`."""

    def __init__(self, net: VideoFaceNet, config: dict, chunk: int = 256, mirror_average: bool = True,
                 pose_smoothing: float | None = None):
        self.net, self.config, self.chunk, self.mirror_average = net, config, chunk, mirror_average
        # seconds of Savitzky–Golay smoothing of the predicted pose; training picks it on the validation videos
        self.pose_smoothing = float(config.get("pose_smoothing_s", 0.0)) if pose_smoothing is None else pose_smoothing
        self.unit_names = tuple(config["unit_names"])
        self.model_id = f"video-meshconv/{config.get('model_id', 'untrained')}"
        self.reads_face_crops = bool(net.config.face_crop)

    def predict_arrays(self, track) -> tuple[np.ndarray, np.ndarray]:
        """Units (T, U) and head rotation (T, 3) axis-angle for a tracked video.

        With ``mirror_average`` units and pose are the mean of the video's and its mirror image's (left and right
        swapped back, the rotation mirrored back): a mirrored video then gives exactly the mirrored face and pose, and
        the mean halves what is not mirror-symmetric in the net's errors (held-out: unit RMSE 0.068 → 0.066,
        7-class 79 % → 84 % when first measured, units only). The tracker's mirror pass is what makes the
        mirrored track a faithful mirror video, pose included. The pose is then smoothed over ``pose_smoothing``
        seconds (linear in the rotation vector, so the mirror symmetry stays)."""
        units, rotation = self._run(track)
        if self.mirror_average:
            from ..rotations import mean_rotation
            from .track_arrays import mirror_rotation, mirror_track, unit_mirror

            mirrored_units, mirrored_rotation = self._run(mirror_track(track))
            units = (units + mirrored_units[:, unit_mirror(self.unit_names)]) / 2
            rotation = mean_rotation(rotation, mirror_rotation(mirrored_rotation)).astype(np.float32)
        from ..video.head_pose import smooth  # the crop is read frame by frame: its noise is jitter the head lacks

        return units, smooth(rotation, float(track.fps), self.pose_smoothing).astype(np.float32)

    def _run(self, track) -> tuple[np.ndarray, np.ndarray]:
        from ..rotations import matrix_to_rotvec

        vertex, frame = track_features(track)
        crops = getattr(track, "face_crops", None)
        device = next(self.net.parameters()).device
        with torch.no_grad():
            v, f = torch.from_numpy(vertex).to(device), torch.from_numpy(frame).to(device)
            c = torch.from_numpy(np.ascontiguousarray(crops)).to(device) if crops is not None else None
            h = torch.cat([self.net.encode(v[i:i + self.chunk], f[i:i + self.chunk],
                                           None if c is None else c[i:i + self.chunk])
                           for i in range(0, len(v), self.chunk)])
            units, correction = self.net.temporal(h[None])
            rotation = corrected_rotation(f[None, :, :3], correction)[0]
        return (units[0].clamp(0.0, 1.0).cpu().numpy().astype(np.float32),
                matrix_to_rotvec(rotation.double().cpu().numpy()).astype(np.float32))

    def predict(self, track) -> VideoFace:
        units, rotation = self.predict_arrays(track)
        return VideoFace(fps=float(track.fps), units=units, head_rotation=rotation,
                         confidence=np.asarray(track.confidence, np.float32), unit_names=self.unit_names,
                         model_id=self.model_id)


def load_face_model(folder: str | Path, device: str = "cpu") -> LearnedFaceModel:
    """What ``core.motion.face_models.video_face_model`` calls when ``video_model.safetensors`` is installed; the
    net runs on the torch ``device``."""
    net, config = load_net(folder)
    net.to(device)
    from ..heads import create

    names = create("default").expression_names
    if tuple(config["unit_names"]) != tuple(names):
        raise VideoModelError(f"{folder}: the model's units are not the default head's 52 ARKit units")
    return LearnedFaceModel(net, config)
