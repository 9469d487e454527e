"""Read the user's FLAME files (FLAME 2020 / 2023 models, MediaPipe landmark embedding) into a :class:`HeadModel`.

FLAME is not redistributable, so users point the add-on at their own download. The official ``.pkl``
files are Python 2 pickles of chumpy arrays and a scipy CSC matrix; chumpy no longer installs on current
Python, and ``pickle.load`` on a file from the internet runs whatever the file asks for. So the pickle
is read by :class:`RestrictedUnpickler`, which resolves only numpy's array-rebuilding globals and turns
chumpy and scipy.sparse objects into inert placeholders that keep their pickled state; every other
global is refused before anything runs. The placeholders are then converted to plain numpy arrays.
"""

from __future__ import annotations

import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, Mapping

import numpy as np

from .errors import HeadModelError, UnsafePickleError
from .head_model import JOINT_NAMES, N_POSE_FEATURES, PARENTS, HeadModel, LandmarkEmbedding

try:  # numpy >= 2 pickles name numpy._core; numpy 1.x has no complete numpy._core
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

FLAME_IDENTITY_COMPONENTS = 300  # FLAME's shapedirs: 300 identity components, then the expression components
FLAME_EXPRESSION_RANGE = (-3.0, 3.0)  # PCA coefficients, in standard deviations
FLAME_LICENSE = "FLAME (MPI-IS), user-supplied; not redistributable"
_ROOT_SENTINEL = 0xFFFFFFFF  # FLAME's kintree_table marks the root's parent as uint32(-1)

_FLAME_FIX = (
    "Download FLAME 2020 or FLAME 2023 from https://flame.is.tue.mpg.de and pick generic_model.pkl "
    "(FLAME 2020) or flame2023.pkl (FLAME 2023)."
)
_EMBEDDING_FIX = "Pick mediapipe_landmark_embedding.npz from the FLAME downloads at https://flame.is.tue.mpg.de."

# Globals a numpy array pickle needs, under numpy 1.x names (Python 2 files) and numpy 2.x names.
_NUMPY_GLOBALS: dict[str, Any] = {
    f"{package}.{name}": value
    for package in ("numpy.core", "numpy._core")
    for name, value in (("multiarray._reconstruct", _reconstruct), ("multiarray.scalar", scalar), ("numeric._frombuffer", _frombuffer))
}
_NUMPY_GLOBALS.update({"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype})

# Compressed sparse classes and the axis their ``indptr`` runs along; FLAME's J_regressor is a csc_matrix.
_SPARSE_LAYOUTS = {"csc_matrix": "csc", "csc_array": "csc", "csr_matrix": "csr", "csr_array": "csr"}

# What a damaged or foreign (but not malicious) pickle makes the unpickler or the conversion raise.
_DAMAGED_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
    OverflowError, MemoryError, RecursionError,
)


# ------------------------------------------------------------------------------------ restricted unpickler


class _Placeholder:
    """Stands in for a class the unpickler will not import: it keeps the pickled state and runs nothing."""

    qualified_name: ClassVar[str] = ""
    state: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Placeholder":
        # NEWOBJ passes the pickled constructor arguments; they are ignored, only the state matters.
        instance = super().__new__(cls)
        instance.state = {}
        return instance

    def __setstate__(self, state: Any) -> None:
        # BUILD hands a dict, or (dict or None, slot dict) for classes with __slots__.
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in parts:
            if part is None:
                continue
            if not isinstance(part, dict):
                raise pickle.UnpicklingError(f"a {self.qualified_name} object carries {type(part).__name__} state, not a dict")
            self.state.update(part)


class _ChumpyPlaceholder(_Placeholder):
    """A chumpy object; a plain ``chumpy.ch.Ch`` keeps its value in ``state['x']``."""


class _SparsePlaceholder(_Placeholder):
    """A scipy CSC/CSR matrix; keeps ``data``, ``indices``, ``indptr`` and ``_shape`` (``shape`` in some versions)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for FLAME ``.pkl`` files that resolves only what a FLAME model contains.

    Allowed: numpy's array and dtype reconstruction, ``set`` (chumpy keeps one in its state), chumpy
    classes and scipy CSC/CSR matrices (both as :class:`_Placeholder` subclasses), ``copyreg._reconstructor``
    for those placeholders only (protocol 0/1 pickles), and ``_codecs.encode(text, 'latin1')`` (how Python 3
    writes bytes at protocol < 3). Any other global raises :class:`UnsafePickleError` before it is called.
    ``find_class`` sees names as written in the file, so Python 2 spellings (``copy_reg``, ``__builtin__``)
    are listed explicitly. Reads with ``encoding="latin1"``, which Python 2 numpy pickles need.
    """

    def __init__(self, file: IO[bytes], source: str | Path) -> None:
        super().__init__(file, encoding="latin1")
        self.source = str(source)
        self._placeholder_classes: dict[str, type[_Placeholder]] = {}

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[qualified]
        if qualified in ("copy_reg._reconstructor", "copyreg._reconstructor"):
            return self._reconstructor
        if qualified in ("__builtin__.object", "builtins.object"):
            return object  # only ever an argument of _reconstructor
        if qualified in ("__builtin__.set", "builtins.set"):
            return set  # chumpy's Ch pickles its _dirty_vars set
        if qualified == "_codecs.encode":
            return self._latin1_encode
        if (module == "chumpy" or module.startswith("chumpy.")) and name.isidentifier():
            return self._placeholder(_ChumpyPlaceholder, qualified)
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in _SPARSE_LAYOUTS:
            return self._placeholder(_SparsePlaceholder, qualified)
        raise UnsafePickleError(self._refusal(qualified))

    def _refusal(self, what: str) -> str:
        return (
            f"{self.source}: refused to load: the pickle asks for {what}, which a FLAME model never contains, "
            f"so this file is not a FLAME model (it may be malicious; nothing from it was run). {_FLAME_FIX}"
        )

    def _placeholder(self, base: type[_Placeholder], qualified: str) -> type[_Placeholder]:
        cls = self._placeholder_classes.get(qualified)
        if cls is None:
            cls = type(qualified.rsplit(".", 1)[1], (base,), {"qualified_name": qualified})
            self._placeholder_classes[qualified] = cls
        return cls

    def _reconstructor(self, cls: Any, base: Any, state: Any) -> _Placeholder:
        """``copyreg._reconstructor`` restricted to ``(placeholder class, object, None)``: protocol 0/1 object creation."""
        if not (isinstance(cls, type) and issubclass(cls, _Placeholder)) or base is not object or state is not None:
            raise UnsafePickleError(self._refusal(f"copyreg._reconstructor of {getattr(cls, '__name__', type(cls).__name__)}"))
        return cls.__new__(cls)

    def _latin1_encode(self, text: Any, encoding: str = "utf-8") -> bytes:
        """``_codecs.encode`` restricted to the one call Python 3 pickles make: latin-1 text back to bytes."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UnsafePickleError(self._refusal(f"_codecs.encode with encoding {encoding!r}"))
        return text.encode("latin1")


def _plain(value: Any) -> Any:
    """Replace placeholders, inside dicts, lists and tuples, by numpy arrays."""
    if isinstance(value, _ChumpyPlaceholder):
        if "x" not in value.state:
            # Only plain Ch arrays store a value; a chumpy expression (ch_ops, reordering) would have to be evaluated.
            raise ValueError(f"a {value.qualified_name} object has no stored array 'x' (it is a chumpy expression, not an array)")
        return np.asarray(_plain(value.state["x"]))
    if isinstance(value, _SparsePlaceholder):
        return _sparse_to_dense(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


def _sparse_to_dense(matrix: _SparsePlaceholder) -> np.ndarray:
    """Dense array of a pickled CSC/CSR matrix, built with numpy alone (Blender's Python has no scipy)."""
    state = matrix.state
    try:
        data, indices, indptr = (np.asarray(_plain(state[key])) for key in ("data", "indices", "indptr"))
        shape = state["_shape"] if "_shape" in state else state["shape"]
        n_rows, n_cols = (int(n) for n in shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a {matrix.qualified_name} object lacks data/indices/indptr/shape ({exc})") from exc
    by_column = _SPARSE_LAYOUTS[matrix.qualified_name.rsplit(".", 1)[1]] == "csc"
    n_major, n_minor = (n_cols, n_rows) if by_column else (n_rows, n_cols)
    counts = np.diff(indptr)
    if (
        indptr.shape != (n_major + 1,) or indptr[0] != 0 or (counts < 0).any()
        or not indptr[-1] == len(indices) == len(data) or indices.ndim != 1 or data.ndim != 1
        or (len(indices) and (indices.min() < 0 or indices.max() >= n_minor))
    ):
        raise ValueError(f"a {matrix.qualified_name} object is inconsistent (indptr/indices do not fit its {n_rows}×{n_cols} shape)")
    major = np.repeat(np.arange(n_major), counts)
    dense = np.zeros((n_rows, n_cols), dtype=np.result_type(data.dtype, np.float32))
    np.add.at(dense, (indices, major) if by_column else (major, indices), data)  # duplicates add up, as in scipy
    return dense


# ------------------------------------------------------------------------------------ reading files


@dataclass
class _Fields:
    """Named arrays read from one file, checked key by key so that every error names the file, the key and the fix."""

    source: Path
    arrays: Mapping[str, Any]
    fix: str

    def error(self, problem: str) -> HeadModelError:
        return HeadModelError(f"{self.source}: {problem}. {self.fix}")

    def array(self, key: str, shape: tuple[int | None, ...], integer: bool = False) -> np.ndarray:
        """The array under ``key``, with ``shape`` (``None`` = any size) and integer or real values."""
        if key not in self.arrays:
            raise self.error(f"'{key}' is missing, so this is not the expected file")
        try:
            array = np.asarray(self.arrays[key])
        except (TypeError, ValueError) as exc:
            raise self.error(f"'{key}' is not an array ({exc})") from exc
        if array.dtype.kind not in ("iu" if integer else "iuf"):
            raise self.error(f"'{key}' holds {array.dtype} values, expected {'integers' if integer else 'numbers'}")
        if array.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, array.shape)):
            want = "×".join("N" if n is None else str(n) for n in shape)
            raise self.error(f"'{key}' has shape {array.shape}, expected {want}")
        if not integer and not np.isfinite(array).all():
            raise self.error(f"'{key}' contains NaN or infinite values")
        return array


def _require_file(path: Path, fix: str) -> None:
    if not path.is_file():
        raise HeadModelError(f"{path}: no such file. {fix}")


def _read_flame_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            content = _plain(RestrictedUnpickler(file, path).load())
    except OSError as exc:
        raise HeadModelError(f"{path}: cannot read the file ({exc}). {_FLAME_FIX}") from exc
    except _DAMAGED_PICKLE_ERRORS as exc:
        raise HeadModelError(
            f"{path}: not a readable FLAME pickle; the file is truncated, damaged or of another kind "
            f"({type(exc).__name__}: {exc}). {_FLAME_FIX}"
        ) from exc
    if not isinstance(content, dict):
        raise HeadModelError(f"{path}: holds a {type(content).__name__}, not FLAME's dictionary of arrays. {_FLAME_FIX}")
    return content


def _read_npz(path: Path, fix: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``, loaded without pickle support (an npz can carry pickles too)."""
    damaged = f"{path}: not a readable .npz archive; the file is truncated, damaged or of another kind"
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            raise HeadModelError(f"{path}: holds a single .npy array, not an .npz archive of named arrays. {fix}")
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's wording when a member (or the file) is a pickle
            raise HeadModelError(
                f"{path}: stores Python objects (pickles), which LatticeTalk does not load from .npz files; "
                f"re-save it with plain numeric arrays only. {fix}"
            ) from exc
        raise HeadModelError(f"{damaged} ({exc}). {fix}") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise HeadModelError(f"{damaged} ({type(exc).__name__}: {exc}). {fix}") from exc


def _read_model_arrays(path: Path) -> dict[str, Any]:
    _require_file(path, _FLAME_FIX)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, _FLAME_FIX)
    if suffix in (".pkl", ".pickle"):
        return _read_flame_pickle(path)
    raise HeadModelError(f"{path}: not a FLAME model file (expected .pkl or .npz). {_FLAME_FIX}")


def _check_kinematic_tree(fields: _Fields) -> None:
    kintree = fields.array("kintree_table", (2, len(JOINT_NAMES)), integer=True).astype(np.int64)
    parents = np.where(kintree[0] == _ROOT_SENTINEL, -1, kintree[0])
    if tuple(kintree[1]) != tuple(range(len(JOINT_NAMES))) or tuple(parents) != PARENTS:
        raise fields.error(
            f"'kintree_table' {kintree.tolist()} is not FLAME's joint tree {JOINT_NAMES} with parents {PARENTS}"
        )


def _split_shapedirs(
    fields: _Fields, shapedirs: np.ndarray, n_shape: int | None, n_expression: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Identity and expression bases. As in FLAME's own code, expressions start at component 300 whatever
    ``n_shape`` is; ``n_shape`` and ``n_expression`` only keep the leading components of each block."""
    n_available = shapedirs.shape[2] - FLAME_IDENTITY_COMPONENTS
    if n_available < 1:
        raise fields.error(
            f"'shapedirs' has {shapedirs.shape[2]} components; FLAME stores {FLAME_IDENTITY_COMPONENTS} identity "
            f"components followed by the expression components"
        )
    n_shape = FLAME_IDENTITY_COMPONENTS if n_shape is None else n_shape
    n_expression = n_available if n_expression is None else n_expression
    if not 0 <= n_shape <= FLAME_IDENTITY_COMPONENTS:
        raise HeadModelError(f"{fields.source}: asked for {n_shape} identity components; choose 0–{FLAME_IDENTITY_COMPONENTS}")
    if not 0 <= n_expression <= n_available:
        raise HeadModelError(f"{fields.source}: asked for {n_expression} expression components; the file has 0–{n_available}")
    start = FLAME_IDENTITY_COMPONENTS
    return shapedirs[:, :, :n_shape], shapedirs[:, :, start:start + n_expression]


# ------------------------------------------------------------------------------------ public API


def load_mediapipe_embedding(path: str | Path) -> LandmarkEmbedding:
    """FLAME's ``mediapipe_landmark_embedding.npz``: per MediaPipe point (``landmark_indices``), a triangle
    (``lmk_face_idx``) and barycentric weights (``lmk_b_coords``)."""
    path = Path(path)
    _require_file(path, _EMBEDDING_FIX)
    fields = _Fields(path, _read_npz(path, _EMBEDDING_FIX), _EMBEDDING_FIX)
    face_index = fields.array("lmk_face_idx", (None,), integer=True)
    n_points = len(face_index)
    barycentric = fields.array("lmk_b_coords", (n_points, 3))
    mediapipe_index = fields.array("landmark_indices", (n_points,), integer=True)
    if n_points == 0:
        raise fields.error("the embedding has no points")
    if face_index.min() < 0:
        raise fields.error("'lmk_face_idx' holds negative triangle indices")
    try:
        return LandmarkEmbedding(
            face_index=face_index.astype(np.int64),
            barycentric=barycentric.astype(np.float32),
            mediapipe_index=mediapipe_index.astype(np.int64),
        )
    except HeadModelError as exc:
        raise fields.error(str(exc)) from exc


def load_flame(
    path: str | Path,
    landmark_embedding_path: str | Path | None = None,
    n_shape: int | None = None,
    n_expression: int | None = None,
) -> HeadModel:
    """A FLAME 2020 (``generic_model.pkl``, ``male_model.pkl``, ``female_model.pkl``) or FLAME 2023
    (``flame2023.pkl``, ``flame2023_no_jaw.pkl``) model, or an ``.npz`` with the same keys, as a HeadModel.

    ``n_shape`` (≤ 300) and ``n_expression`` keep only the leading identity / expression components
    (default: all). ``landmark_embedding_path`` attaches FLAME's MediaPipe landmark embedding. Every
    problem raises :class:`HeadModelError` naming the file; a pickle that asks for anything but numpy,
    chumpy and scipy.sparse objects raises :class:`UnsafePickleError` without running it.
    """
    path = Path(path)
    fields = _Fields(path, _read_model_arrays(path), _FLAME_FIX)
    v_template = fields.array("v_template", (None, 3))
    n_vertices = len(v_template)
    faces = fields.array("f", (None, 3), integer=True)
    shapedirs = fields.array("shapedirs", (n_vertices, 3, None))
    posedirs = fields.array("posedirs", (n_vertices, 3, N_POSE_FEATURES))
    j_regressor = fields.array("J_regressor", (len(JOINT_NAMES), n_vertices))
    lbs_weights = fields.array("weights", (n_vertices, len(JOINT_NAMES)))
    _check_kinematic_tree(fields)
    identity, expression = _split_shapedirs(fields, shapedirs, n_shape, n_expression)

    f32 = np.float32
    try:
        model = HeadModel(
            head_id=f"{'flame2023' if '2023' in path.stem else 'flame2020'}:{path.stem}",
            v_template=np.ascontiguousarray(v_template, dtype=f32),
            faces=faces.astype(np.int64),
            shapedirs=np.ascontiguousarray(identity, dtype=f32),
            exprdirs=np.ascontiguousarray(expression, dtype=f32),
            posedirs=np.ascontiguousarray(posedirs, dtype=f32),
            j_regressor=np.ascontiguousarray(j_regressor, dtype=f32),
            lbs_weights=np.ascontiguousarray(lbs_weights, dtype=f32),
            expression_names=tuple(f"exp{i:03d}" for i in range(expression.shape[2])),
            expression_range=FLAME_EXPRESSION_RANGE,
            shape_names=tuple(f"shape{i:03d}" for i in range(identity.shape[2])),
            info={"source": str(path), "license": FLAME_LICENSE},
        )
    except HeadModelError as exc:  # e.g. faces pointing past the template
        raise fields.error(str(exc)) from exc

    if landmark_embedding_path is None:
        return model
    embedding = load_mediapipe_embedding(landmark_embedding_path)
    try:
        return model.with_landmarks(embedding)
    except HeadModelError as exc:
        raise HeadModelError(f"{landmark_embedding_path}: does not fit {path.name} ({exc}). {_EMBEDDING_FIX}") from exc
