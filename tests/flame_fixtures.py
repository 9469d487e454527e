"""Synthetic FLAME files for tests: small random arrays, written the way FLAME's releases store them.

FLAME's ``.pkl`` files are Python 2 pickles whose arrays are chumpy ``Ch`` objects and whose joint
regressor is a scipy CSC matrix. :func:`write_flame_pkl` reproduces that layout without chumpy: it pickles
stand-in classes that carry the pickled names ``chumpy.ch.Ch`` and ``scipy.sparse.csc.csc_matrix``.
"""

from __future__ import annotations

import pickle
import struct
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT_SENTINEL = 4294967295  # FLAME's parent of the root joint, uint32(-1)
CHUMPY_KEYS = ("v_template", "shapedirs", "posedirs", "weights", "J")  # stored as chumpy Ch in FLAME's pkl
SPARSE_KEYS = ("J_regressor",)  # stored as scipy.sparse.csc_matrix
N_JOINTS = 5


def make_flame_arrays(seed: int, n_vertices: int = 60, n_faces: int = 100, n_shape: int = 300, n_expr: int = 100) -> dict[str, Any]:
    """Random but well-formed FLAME arrays (head-sized template, valid faces, normalised regressor and weights)."""
    rng = np.random.default_rng(seed)
    v_template = rng.uniform(-0.08, 0.08, (n_vertices, 3))
    faces = np.stack([rng.choice(n_vertices, 3, replace=False) for _ in range(n_faces)]).astype(np.uint32)
    j_regressor = np.zeros((N_JOINTS, n_vertices))
    for joint in range(N_JOINTS):  # a few vertices per joint, weights summing to one
        j_regressor[joint, rng.choice(n_vertices, 4, replace=False)] = rng.dirichlet(np.ones(4))
    return {
        "v_template": v_template,
        "f": faces,
        "shapedirs": rng.normal(0.0, 1e-3, (n_vertices, 3, n_shape + n_expr)),
        "posedirs": rng.normal(0.0, 1e-3, (n_vertices, 3, 36)),
        "J_regressor": j_regressor,
        "weights": rng.dirichlet(np.ones(N_JOINTS), n_vertices),
        "kintree_table": np.array([[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "J": j_regressor @ v_template,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@contextmanager
def fake_pickle_classes(*modules: tuple[str, str]) -> Iterator[list[type]]:
    """Classes named ``module.name`` for each ``(module, name)``, picklable by that name inside the block.

    The pickler checks ``sys.modules[module].name`` (and imports the top-level package), so fake modules go
    there for the duration and the previous entries come back afterwards: real scipy stays intact, and no
    fake chumpy leaks into later tests."""
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


def make_embedding_arrays(seed: int, n_faces: int, n_points: int = 105) -> dict[str, np.ndarray]:
    """Random MediaPipe landmark embedding in the layout of FLAME's ``mediapipe_landmark_embedding.npz``."""
    rng = np.random.default_rng(seed)
    return {
        "lmk_face_idx": rng.integers(0, n_faces, n_points).astype(np.int64),
        "lmk_b_coords": rng.dirichlet(np.ones(3), n_points),
        "landmark_indices": np.sort(rng.choice(478, n_points, replace=False)).astype(np.int64),
    }


def write_embedding_npz(path: str | Path, lmk_face_idx: Any, lmk_b_coords: Any, landmark_indices: Any) -> Path:
    path = Path(path)
    with path.open("wb") as file:
        np.savez(file, lmk_face_idx=lmk_face_idx, lmk_b_coords=lmk_b_coords, landmark_indices=landmark_indices)
    return path
