"""A realistic FLAME-format test head: the default head's mesh written in FLAME's own schema and files.

FLAME cannot ship, so the FLAME path is tested on a head that has FLAME's keys, layout and conventions but is
built from the default head (CC0): its 4,828 vertices, faces, five joints, skin weights and jaw corrective;
``shapedirs`` with 300 identity components (the default head's MakeHuman head/chin/nose targets, zero-padded) and
100 expression components (a PCA of the 52 ARKit face-unit deltas, zero-padded); a MediaPipe embedding in the
layout of FLAME's ``mediapipe_landmark_embedding.npz`` covering the contours FLAME's own embedding covers (lips,
eyes, brows, nose bridge), not all 478 points. The expression basis spans the ARKit deltas exactly, so a clip
made for the default head has an exact counterpart on this head (:attr:`FlameTestHead.units_to_expression`):
conversions through the motion space can be measured against an exact reference on real face geometry.

The ``.pkl`` is written as FLAME's releases are: a Python 2 pickle whose arrays are chumpy ``Ch`` objects and
whose joint regressor is a scipy ``csc_matrix``, made without chumpy (stand-in classes carry the pickled names).

    python tools/flame_test_head.py --out out/flame_test_head   # generic_model.pkl, generic_model.npz,
                                                               # mediapipe_landmark_embedding.npz
    python tools/flame_test_head.py --out out/flame_test_head --corpus CORPUS   # and the measurement below

The measurement (:func:`measure_conversion`): the shipped speech model on a corpus's held-out utterances (from
``python -m lattice_talk data synth``), its default-head clip converted to this head through the motion space as
every surface does (``core.head_convert.convert_clip``), posed on this head's mesh and compared with the exact
reference (the corpus's own units mapped through :attr:`FlameTestHead.units_to_expression`); beside it the same
prediction on the default head against the corpus motion. Both are read at the default head's 478 MediaPipe
points, which lie on either mesh (the same vertices): lip vertex error over the lip points, p/b/m closure from
the inner-lip gap.
"""

from __future__ import annotations

import argparse
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT_SENTINEL = 4294967295  # FLAME's parent of the root joint, uint32(-1)
CHUMPY_KEYS = ("v_template", "shapedirs", "posedirs", "weights", "J")  # stored as chumpy Ch in FLAME's pkl
SPARSE_KEYS = ("J_regressor",)  # stored as scipy.sparse.csc_matrix
FLAME_SHAPE_COMPONENTS, FLAME_EXPRESSION_COMPONENTS = 300, 100
FLAME_EXPRESSION_BOUND = 3.0  # FLAME's expression coefficients are read as standard deviations in ±3
EMBEDDING_FILE = "mediapipe_landmark_embedding.npz"  # the name FLAME's download gives it


# ------------------------------------------------------------------------------------ FLAME's file layout


@contextmanager
def fake_pickle_classes(*modules: tuple[str, str]) -> Iterator[list[type]]:
    """Classes named ``module.name`` for each ``(module, name)``, picklable by that name inside the block.

    The pickler checks ``sys.modules[module].name`` (and imports the top-level package), so fake modules go
    there for the duration and the previous entries come back afterwards: real scipy stays intact, and no
    fake chumpy leaks into later code."""
    absent = object()
    fakes: dict[str, types.ModuleType] = {}
    classes = []
    for module_name, class_name in modules:
        cls = type(class_name, (), {"__module__": module_name, "__qualname__": class_name})
        setattr(fakes.setdefault(module_name, types.ModuleType(module_name)), class_name, cls)
        classes.append(cls)
        top = module_name.partition(".")[0]
        if top not in sys.modules:  # e.g. chumpy; a real top-level package (scipy) is left alone
            fakes.setdefault(top, types.ModuleType(top))
    saved = {name: sys.modules.get(name, absent) for name in fakes}
    sys.modules.update(fakes)
    try:
        yield classes
    finally:
        for name, previous in saved.items():
            if previous is absent:
                del sys.modules[name]
            else:
                sys.modules[name] = previous


class _Python2Pickler(pickle._Pickler):  # type: ignore[name-defined]  # the pure-Python pickler has a dispatch table
    """Writes ``str`` and ``bytes`` as Python 2 ``str`` (BINSTRING opcodes), as Python 2 did, instead of
    Python 3's unicode opcodes and ``_codecs.encode`` calls; ``encoding='latin1'`` reads them back as ``str``."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_python2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str


def _csc_state(dense: np.ndarray) -> dict[str, Any]:
    """The ``__dict__`` a pickled scipy ``csc_matrix`` of ``dense`` carries."""
    cols, rows = np.nonzero(dense.T)  # column-major order, rows sorted within each column
    indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=dense.shape[1]))])
    return {
        "data": dense[rows, cols],
        "indices": rows.astype(np.int32),
        "indptr": indptr.astype(np.int32),
        "_shape": dense.shape,
        "maxprint": 50,
        "format": "csc",
    }


def write_flame_pkl(path: str | Path, arrays: dict[str, Any], protocol: int = 2, python2: bool = True) -> Path:
    """Write ``arrays`` as a FLAME ``.pkl``: CHUMPY_KEYS as ``chumpy.ch.Ch`` objects, SPARSE_KEYS as a
    ``scipy.sparse.csc.csc_matrix``. ``python2`` writes strings as Python 2 did (protocol ≤ 2 only);
    otherwise it is a plain Python 3 pickle of the given protocol."""
    if python2 and protocol > 2:
        raise ValueError("Python 2 pickles have protocol 0–2")
    path = Path(path)
    with fake_pickle_classes(("chumpy.ch", "Ch"), ("scipy.sparse.csc", "csc_matrix")) as (ch_class, csc_class):
        content: dict[str, Any] = {}
        for key, value in arrays.items():
            if key in CHUMPY_KEYS:
                obj = ch_class.__new__(ch_class)
                # A Ch's pickled __dict__ (chumpy drops only _parents and _cache).
                obj.__dict__.update({"x": np.asarray(value), "_dirty_vars": {"x"}, "_itr": None,
                                     "_depends_on_deps": {}, "_make_dense": False, "_make_sparse": False})
            elif key in SPARSE_KEYS:
                obj = csc_class.__new__(csc_class)
                obj.__dict__.update(_csc_state(np.asarray(value)))
            else:
                obj = value
            content[key] = obj
        with path.open("wb") as file:
            if python2:
                _Python2Pickler(file, protocol=protocol).dump(content)
            else:
                pickle.dump(content, file, protocol=protocol)
    return path


def write_flame_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """Write ``arrays`` as an ``.npz`` (plain arrays, no pickles)."""
    path = Path(path)
    with path.open("wb") as file:
        np.savez(file, **{key: np.asarray(value) for key, value in arrays.items()})
    return path


def write_embedding_npz(path: str | Path, lmk_face_idx: Any, lmk_b_coords: Any, landmark_indices: Any) -> Path:
    """FLAME's ``mediapipe_landmark_embedding.npz`` layout."""
    path = Path(path)
    with path.open("wb") as file:
        np.savez(file, lmk_face_idx=lmk_face_idx, lmk_b_coords=lmk_b_coords, landmark_indices=landmark_indices)
    return path


# ------------------------------------------------------------------------------------ the test head


@dataclass
class FlameTestHead:
    arrays: dict[str, Any]  # FLAME's model keys
    embedding: dict[str, np.ndarray]  # FLAME's embedding keys
    units_to_expression: np.ndarray  # (100, 52): the default head's ARKit units → this head's expression coefficients

    def write(self, folder: str | Path, stem: str = "generic_model") -> dict[str, Path]:
        """``<stem>.pkl`` (FLAME 2020's layout), ``<stem>.npz`` (same keys) and the embedding beside them."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return {"pkl": write_flame_pkl(folder / f"{stem}.pkl", self.arrays),
                "npz": write_flame_npz(folder / f"{stem}.npz", self.arrays),
                "embedding": write_embedding_npz(folder / EMBEDDING_FILE, **self.embedding)}


def flame_embedding_points() -> tuple[int, ...]:
    """The MediaPipe points the test head embeds: the contours FLAME's own 105-point embedding covers."""
    from lattice_talk.core.mediapipe_points import BROWS, EYES, LIPS, NOSE_BRIDGE

    return tuple(sorted(set(LIPS + EYES + BROWS + NOSE_BRIDGE)))


def build_flame_test_head() -> FlameTestHead:
    """The default head in FLAME's schema (see the module docstring)."""
    from lattice_talk.core.heads import create

    head = create("default")
    n_vertices = head.n_vertices
    deltas = head.exprdirs.reshape(-1, head.n_expression).astype(np.float64)  # (3V, 52), one column per unit
    basis, singular, vt = np.linalg.svd(deltas, full_matrices=False)
    # Scale each component so that every combination of units in 0–1 stays inside FLAME's ±3: the largest
    # coefficient a unit box can give component k is the larger of its positive and negative row sums.
    reach = np.maximum(np.clip(vt, 0, None).sum(axis=1), np.clip(-vt, 0, None).sum(axis=1))
    scale = singular * reach / FLAME_EXPRESSION_BOUND
    exprdirs = np.zeros((3 * n_vertices, FLAME_EXPRESSION_COMPONENTS))
    exprdirs[:, :head.n_expression] = basis * scale
    units_to_expression = np.zeros((FLAME_EXPRESSION_COMPONENTS, head.n_expression))
    units_to_expression[:head.n_expression] = (singular / scale)[:, None] * vt
    identity = np.zeros((n_vertices, 3, FLAME_SHAPE_COMPONENTS))
    identity[:, :, :head.n_shape] = head.shapedirs
    shapedirs = np.concatenate([identity, exprdirs.reshape(n_vertices, 3, -1)], axis=2)

    arrays = {
        "v_template": head.v_template.astype(np.float64),
        "f": head.faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": head.posedirs.astype(np.float64),
        "J_regressor": head.j_regressor.astype(np.float64),
        "weights": head.lbs_weights.astype(np.float64),
        "kintree_table": np.array([[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "J": head.j_regressor.astype(np.float64) @ head.v_template,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    rows = [int(np.flatnonzero(head.landmarks.mediapipe_index == p)[0]) for p in flame_embedding_points()]
    embedding = {
        "lmk_face_idx": head.landmarks.face_index[rows].astype(np.int64),
        "lmk_b_coords": head.landmarks.barycentric[rows].astype(np.float64),
        "landmark_indices": head.landmarks.mediapipe_index[rows].astype(np.int64),
    }
    return FlameTestHead(arrays, embedding, units_to_expression.astype(np.float32))


def measure_conversion(corpus_dir: str | Path, test_head: FlameTestHead, model_file: str | Path,
                       limit: int | None = None) -> dict[str, dict[str, float]]:
    """Held-out lip vertex error (mm) and p/b/m closure of the shipped speech model on the default head and,
    converted through the motion space, on this FLAME-format head loaded from ``model_file`` (see the module
    docstring)."""
    from lattice_talk.core import metrics
    from lattice_talk.core.clip import AnimationClip
    from lattice_talk.core.head_convert import convert_clip
    from lattice_talk.core.heads import create
    from lattice_talk.core.lbs import barycentric_points
    from lattice_talk.core.mediapipe_points import LIPS
    from lattice_talk.core.motion_file import MotionTrack
    from lattice_talk.core.speech.features import decoder_features
    from lattice_talk.core.speech.pipeline import MODEL_DIR
    from lattice_talk.core.speech.train import load_examples
    from lattice_talk.core.speech.model import apply_seal, decode, load_decoder, seal_window

    default, flame = create("default"), create(model_file)
    points = default.landmarks

    def posed(head, expression: np.ndarray, jaw: np.ndarray, utterance) -> MotionTrack:
        pose = np.zeros((len(jaw), 5, 3), np.float32)
        pose[:, 2, 0] = jaw
        vertices = head.forward(expression=np.asarray(expression, np.float32), pose=pose).vertices
        return MotionTrack(fps=utterance.fps, point_ids=points.mediapipe_index, phonemes=utterance.phonemes,
                           points=barycentric_points(vertices, head.faces, points.face_index, points.barycentric))

    model, config = load_decoder(MODEL_DIR)
    examples = load_examples(corpus_dir, "heldout", decoder_features(config, MODEL_DIR), limit=limit)
    errors: dict[str, list[float]] = {"default_head": [], "flame_test_head": []}
    closed = {name: [0, 0] for name in errors}
    for example in examples:
        u = example.utterance
        units, jaw = apply_seal(*decode(model, example.features, len(u.jaw)), u.unit_names, seal_window(config))
        jaw_rotvec = np.zeros((len(jaw), 3), np.float32)
        jaw_rotvec[:, 0] = jaw
        clip = AnimationClip(fps=u.fps, start_frame=1, head_id=default.head_id, expression=units.astype(np.float32),
                             expression_names=tuple(u.unit_names), jaw=jaw_rotvec)
        converted = convert_clip(clip, default, flame)
        pairs = {
            "default_head": (posed(default, units, jaw, u), posed(default, u.units, u.jaw, u)),
            "flame_test_head": (posed(flame, converted.expression, converted.jaw[:, 0], u),
                                posed(flame, u.units @ test_head.units_to_expression.T, u.jaw, u)),
        }
        for name, (pred, ref) in pairs.items():
            errors[name].append(metrics.lip_vertex_error(pred.select(LIPS), ref.select(LIPS)).mm)
            closure = metrics.bilabial_closure_rate(pred)
            closed[name][0] += closure.count - len(closure.missed)
            closed[name][1] += closure.count
    return {name: {"lip_vertex_error_mm": float(np.mean(errors[name])), "bilabial_closure_rate": hit / max(total, 1),
                   "bilabials": total, "utterances": len(examples)}
            for name, (hit, total) in closed.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/flame_test_head", help="folder for the model and embedding files")
    parser.add_argument("--corpus", default=None, help="a corpus from 'data synth': measure conversion on its held-out split")
    parser.add_argument("--limit", type=int, default=None, help="at most this many held-out utterances")
    args = parser.parse_args(argv)
    test_head = build_flame_test_head()
    files = test_head.write(args.out)
    for kind, path in files.items():
        print(f"wrote {kind}: {path}")
    if args.corpus:
        import json

        print(json.dumps(measure_conversion(args.corpus, test_head, files["pkl"], args.limit), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
