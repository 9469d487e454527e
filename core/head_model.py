"""One head type for every FLAME-schema head: FLAME 2020/2023 files and our own default head.

Coordinates follow FLAME: metres, +Y up, the face looks along +Z. Joints are FLAME's five, in FLAME's
order, with the same names as the bones of the Blender armature.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HeadModelError
from .lbs import LBSResult, barycentric_points, lbs_np, lbs_torch

JOINT_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "eye_L", "eye_R")
PARENTS: tuple[int, ...] = (-1, 0, 1, 1, 1)
N_POSE_FEATURES = 9 * (len(JOINT_NAMES) - 1)
MEDIAPIPE_POINT_COUNT = 478  # 468 face-mesh points + 10 iris points

HEAD_FILE_FORMAT = "lattice_talk.head/1"
HEAD_FILE_SUFFIX = ".npz"


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Where MediaPipe face-mesh points sit on the head: a triangle and barycentric weights each.

    ``mediapipe_index[i]`` is the MediaPipe point (0–477) that row ``i`` embeds; a head may cover a
    subset (FLAME's own embedding covers 105 points)."""

    face_index: np.ndarray  # (L,) int64
    barycentric: np.ndarray  # (L, 3) float32
    mediapipe_index: np.ndarray  # (L,) int64

    def __post_init__(self) -> None:
        n = len(self.face_index)
        if self.barycentric.shape != (n, 3) or self.mediapipe_index.shape != (n,):
            raise HeadModelError(
                f"landmark embedding arrays disagree: face_index {self.face_index.shape}, "
                f"barycentric {self.barycentric.shape}, mediapipe_index {self.mediapipe_index.shape}"
            )
        if n and (self.mediapipe_index.min() < 0 or self.mediapipe_index.max() >= MEDIAPIPE_POINT_COUNT):
            raise HeadModelError("landmark embedding names MediaPipe points outside 0–477")


@dataclass
class HeadModel:
    """Template, bases, rig and landmark embedding of one head (see DESIGN.md, *Head model*)."""

    head_id: str
    v_template: np.ndarray  # (V, 3) float32, metres
    faces: np.ndarray  # (F, 3) int64
    shapedirs: np.ndarray  # (V, 3, S)
    exprdirs: np.ndarray  # (V, 3, E)
    posedirs: np.ndarray  # (V, 3, 36)
    j_regressor: np.ndarray  # (5, V) dense
    lbs_weights: np.ndarray  # (V, 5)
    expression_names: tuple[str, ...]
    expression_range: tuple[float, float]  # slider/solver bounds: (0, 1) for ARKit units, (-3, 3) for FLAME PCA
    shape_names: tuple[str, ...] = ()
    landmarks: LandmarkEmbedding | None = None
    parents: np.ndarray = field(default_factory=lambda: np.array(PARENTS, dtype=np.int64))
    joint_names: tuple[str, ...] = JOINT_NAMES
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # named vertex index sets, e.g. "lips"
    info: dict[str, str] = field(default_factory=dict)  # provenance: source, license

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ properties
    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expression(self) -> int:
        return int(self.exprdirs.shape[2])

    def validate(self) -> None:
        """Raise :class:`HeadModelError` naming the first array whose shape breaks the schema."""
        n_v = self.v_template.shape[0] if self.v_template.ndim == 2 else -1
        expected = {
            "v_template": (self.v_template, (n_v, 3)),
            "shapedirs": (self.shapedirs, (n_v, 3, None)),
            "exprdirs": (self.exprdirs, (n_v, 3, None)),
            "posedirs": (self.posedirs, (n_v, 3, N_POSE_FEATURES)),
            "j_regressor": (self.j_regressor, (len(JOINT_NAMES), n_v)),
            "lbs_weights": (self.lbs_weights, (n_v, len(JOINT_NAMES))),
            "faces": (self.faces, (None, 3)),
        }
        for name, (array, shape) in expected.items():
            if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
                want = "×".join("N" if s is None else str(s) for s in shape)
                raise HeadModelError(f"{self.head_id}: {name} has shape {array.shape}, expected {want}")
        if n_v < 3:
            raise HeadModelError(f"{self.head_id}: template has {n_v} vertices")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= n_v):
            raise HeadModelError(f"{self.head_id}: faces index vertices outside 0–{n_v - 1}")
        if len(self.expression_names) != self.n_expression:
            raise HeadModelError(f"{self.head_id}: {len(self.expression_names)} expression names for {self.n_expression} components")
        if self.shape_names and len(self.shape_names) != self.n_shape:
            raise HeadModelError(f"{self.head_id}: {len(self.shape_names)} shape names for {self.n_shape} components")
        if tuple(self.joint_names) != JOINT_NAMES or tuple(int(p) for p in self.parents) != PARENTS:
            raise HeadModelError(f"{self.head_id}: kinematic tree must be FLAME's {JOINT_NAMES} with parents {PARENTS}")
        if self.landmarks is not None and len(self.landmarks.face_index) and self.landmarks.face_index.max() >= len(self.faces):
            raise HeadModelError(f"{self.head_id}: landmark embedding points at triangles the mesh does not have")

    # ------------------------------------------------------------------ evaluation
    def zeros(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Neutral parameters for :meth:`forward` (betas, expression, pose, translation)."""
        return {
            "betas": np.zeros((batch, self.n_shape), np.float32),
            "expression": np.zeros((batch, self.n_expression), np.float32),
            "pose": np.zeros((batch, len(JOINT_NAMES), 3), np.float32),
            "translation": np.zeros((batch, 3), np.float32),
        }

    def forward(self, betas: Any = None, expression: Any = None, pose: Any = None, translation: Any = None) -> LBSResult:
        """Posed mesh for a batch of parameters; numpy in → numpy out, torch in → torch out.

        Missing arguments are neutral. ``pose`` is axis-angle per joint in FLAME order, (B, 5, 3)."""
        given = [a for a in (betas, expression, pose, translation) if a is not None]
        if given and not isinstance(given[0], np.ndarray):
            return self._forward_torch(betas, expression, pose, translation)
        batch = given[0].shape[0] if given else 1
        neutral = self.zeros(batch)
        return lbs_np(
            self.v_template, self.shapedirs, self.exprdirs, self.posedirs, self.j_regressor, self.parents, self.lbs_weights,
            neutral["betas"] if betas is None else betas,
            neutral["expression"] if expression is None else expression,
            neutral["pose"] if pose is None else pose,
            translation,
        )

    def _forward_torch(self, betas: Any, expression: Any, pose: Any, translation: Any) -> LBSResult:
        import torch

        ref = next(a for a in (betas, expression, pose, translation) if a is not None)
        batch, dtype, device = ref.shape[0], ref.dtype, ref.device
        buffers = self.torch_buffers(dtype=dtype, device=device)
        return lbs_torch(
            buffers["v_template"], buffers["shapedirs"], buffers["exprdirs"], buffers["posedirs"], buffers["j_regressor"],
            buffers["parents"], buffers["lbs_weights"],
            torch.zeros(batch, self.n_shape, dtype=dtype, device=device) if betas is None else betas,
            torch.zeros(batch, self.n_expression, dtype=dtype, device=device) if expression is None else expression,
            torch.zeros(batch, len(JOINT_NAMES), 3, dtype=dtype, device=device) if pose is None else pose,
            translation,
        )

    def torch_buffers(self, dtype: Any = None, device: Any = None) -> dict[str, Any]:
        """The model's arrays as torch tensors, for ``register_buffer`` in modules that fit or train."""
        import torch

        dtype = dtype or torch.float32
        out = {name: torch.as_tensor(getattr(self, name), dtype=dtype, device=device)
               for name in ("v_template", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights")}
        out["parents"] = torch.as_tensor(self.parents, dtype=torch.long, device=device)
        out["faces"] = torch.as_tensor(self.faces, dtype=torch.long, device=device)
        return out

    def landmark_points(self, vertices: Any) -> Any:
        """MediaPipe points on posed vertices (B, V, 3) → (B, L, 3), rows in ``landmarks.mediapipe_index`` order."""
        if self.landmarks is None:
            raise HeadModelError(f"{self.head_id}: no MediaPipe landmark embedding; load FLAME's embedding file with it")
        emb = self.landmarks
        if isinstance(vertices, np.ndarray):
            return barycentric_points(vertices, self.faces, emb.face_index, emb.barycentric.astype(vertices.dtype))
        import torch

        faces = torch.as_tensor(self.faces, device=vertices.device)
        bary = torch.as_tensor(emb.barycentric, dtype=vertices.dtype, device=vertices.device)
        return barycentric_points(vertices, faces, torch.as_tensor(emb.face_index, device=vertices.device), bary)

    def with_landmarks(self, landmarks: LandmarkEmbedding) -> "HeadModel":
        return replace(self, landmarks=landmarks)

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path, basis_dtype: Any = np.float16) -> Path:
        """Write the head as ``.npz``: fp32 template/rig, ``basis_dtype`` blend-shape bases, names as JSON.

        npz (read with ``allow_pickle=False``) because Blender's own Python ships numpy but neither
        safetensors nor scipy, and *Add Head* must work before any dependency is installed."""
        path = Path(path)
        if path.suffix != HEAD_FILE_SUFFIX:
            raise HeadModelError(f"{path}: head files end in {HEAD_FILE_SUFFIX}")
        arrays = {
            "v_template": self.v_template.astype(np.float32),
            "faces": self.faces.astype(np.int32),
            "shapedirs": self.shapedirs.astype(basis_dtype),
            "exprdirs": self.exprdirs.astype(basis_dtype),
            "posedirs": self.posedirs.astype(basis_dtype),
            "j_regressor": self.j_regressor.astype(np.float32),
            "lbs_weights": self.lbs_weights.astype(np.float32),
        }
        if self.landmarks is not None:
            arrays["landmarks.face_index"] = self.landmarks.face_index.astype(np.int32)
            arrays["landmarks.barycentric"] = self.landmarks.barycentric.astype(np.float32)
            arrays["landmarks.mediapipe_index"] = self.landmarks.mediapipe_index.astype(np.int32)
        for name, idx in self.regions.items():
            arrays[f"regions.{name}"] = np.asarray(idx, dtype=np.int32)
        metadata = {
            "format": HEAD_FILE_FORMAT,
            "head_id": self.head_id,
            "expression_names": list(self.expression_names),
            "expression_range": list(self.expression_range),
            "shape_names": list(self.shape_names),
            "info": self.info,
        }
        arrays["metadata"] = np.array(json.dumps(metadata, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path


def load_head_file(path: str | Path) -> HeadModel:
    """Read a head written by :meth:`HeadModel.save`."""
    path = Path(path)
    fix = "the file is missing or damaged: reinstall the add-on, or rebuild it with tools/build_default_head.py"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("metadata")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise HeadModelError(f"{path}: cannot read head file ({exc}); {fix}") from exc
    if meta.get("format") != HEAD_FILE_FORMAT:
        raise HeadModelError(f"{path}: not a LatticeTalk head file (format {meta.get('format')!r}); {fix}")
    landmarks = None
    if "landmarks.face_index" in arrays:
        landmarks = LandmarkEmbedding(
            face_index=arrays["landmarks.face_index"].astype(np.int64),
            barycentric=arrays["landmarks.barycentric"].astype(np.float32),
            mediapipe_index=arrays["landmarks.mediapipe_index"].astype(np.int64),
        )
    f32 = np.float32
    return HeadModel(
        head_id=meta["head_id"],
        v_template=arrays["v_template"].astype(f32),
        faces=arrays["faces"].astype(np.int64),
        shapedirs=arrays["shapedirs"].astype(f32),
        exprdirs=arrays["exprdirs"].astype(f32),
        posedirs=arrays["posedirs"].astype(f32),
        j_regressor=arrays["j_regressor"].astype(f32),
        lbs_weights=arrays["lbs_weights"].astype(f32),
        expression_names=tuple(meta["expression_names"]),
        expression_range=tuple(meta["expression_range"]),
        shape_names=tuple(meta["shape_names"]),
        landmarks=landmarks,
        regions={k.split(".", 1)[1]: v.astype(np.int64) for k, v in arrays.items() if k.startswith("regions.")},
        info=dict(meta.get("info", {})),
    )
