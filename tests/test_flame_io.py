"""FLAME loading: official pkl/npz layouts without chumpy, refusal of malicious pickles, clear errors."""

from __future__ import annotations

import builtins
import os
import pickle
import sys

import numpy as np
import pytest

from flame_fixtures import (
    ROOT_SENTINEL,
    make_embedding_arrays,
    make_flame_arrays,
    write_embedding_npz,
    write_flame_npz,
    write_flame_pkl,
)
from lattice_talk.core.errors import HeadModelError, UnsafePickleError
from lattice_talk.core.flame_io import load_flame, load_mediapipe_embedding

N_FACES = 100


@pytest.fixture(scope="module")
def arrays() -> dict:
    return make_flame_arrays(seed=7, n_faces=N_FACES)


def assert_matches(model, arrays: dict, n_shape: int = 300, n_expression: int = 100) -> None:
    f32 = np.float32
    np.testing.assert_array_equal(model.v_template, arrays["v_template"].astype(f32))
    np.testing.assert_array_equal(model.faces, arrays["f"].astype(np.int64))
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"][:, :, :n_shape].astype(f32))
    np.testing.assert_array_equal(model.exprdirs, arrays["shapedirs"][:, :, 300:300 + n_expression].astype(f32))
    np.testing.assert_array_equal(model.posedirs, arrays["posedirs"].astype(f32))
    np.testing.assert_array_equal(model.j_regressor, arrays["J_regressor"].astype(f32))
    np.testing.assert_array_equal(model.lbs_weights, arrays["weights"].astype(f32))
    for name in ("v_template", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights"):
        assert getattr(model, name).dtype == f32, name
    assert model.faces.dtype == np.int64


# ------------------------------------------------------------------------------------ well-formed files


@pytest.mark.parametrize(
    ("protocol", "python2"),
    [(1, True), (2, True), (2, False), (4, False), (5, False)],
    ids=["py2-protocol1-reconstructor", "py2-protocol2", "py3-protocol2-codecs", "py3-protocol4", "py3-protocol5-frombuffer"],
)
def test_loads_flame2020_pickle(tmp_path, arrays, protocol, python2):
    path = write_flame_pkl(tmp_path / "generic_model.pkl", arrays, protocol=protocol, python2=python2)
    model = load_flame(path)
    assert model.head_id == "flame2020:generic_model"
    assert (model.n_shape, model.n_expression) == (300, 100)
    assert model.expression_names[:2] == ("exp000", "exp001") and len(model.expression_names) == 100
    assert model.shape_names[-1] == "shape299"
    assert model.expression_range == (-3.0, 3.0)
    assert model.info == {"source": str(path), "license": "FLAME (MPI-IS), user-supplied; not redistributable"}
    assert tuple(model.parents) == (-1, 0, 1, 1, 1)
    assert_matches(model, arrays)


def test_loads_flame2023_npz_and_neutral_forward_is_template(tmp_path, arrays):
    model = load_flame(write_flame_npz(tmp_path / "flame2023.npz", arrays))
    assert model.head_id == "flame2023:flame2023"
    assert_matches(model, arrays)
    out = model.forward()
    assert out.vertices.shape == (1, 60, 3)
    np.testing.assert_allclose(out.vertices[0], model.v_template, atol=1e-6)


def test_flame2023_pickle_head_id(tmp_path, arrays):
    model = load_flame(write_flame_pkl(tmp_path / "flame2023_no_jaw.pkl", arrays))
    assert model.head_id == "flame2023:flame2023_no_jaw"


def test_writing_fixture_pickles_leaves_sys_modules_alone(tmp_path, arrays):
    sparse_before = sys.modules.get("scipy.sparse.csc")
    chumpy_before = {name for name in sys.modules if name == "chumpy" or name.startswith("chumpy.")}
    write_flame_pkl(tmp_path / "generic_model.pkl", arrays)
    assert sys.modules.get("scipy.sparse.csc") is sparse_before
    assert {name for name in sys.modules if name == "chumpy" or name.startswith("chumpy.")} == chumpy_before


def test_component_counts_keep_leading_components(tmp_path, arrays):
    path = write_flame_pkl(tmp_path / "generic_model.pkl", arrays)
    model = load_flame(path, n_shape=10, n_expression=5)
    assert (model.n_shape, model.n_expression) == (10, 5)
    assert len(model.expression_names) == 5 and len(model.shape_names) == 10
    assert_matches(model, arrays, n_shape=10, n_expression=5)
    with pytest.raises(HeadModelError, match="expression components"):
        load_flame(path, n_expression=101)
    with pytest.raises(HeadModelError, match="identity components"):
        load_flame(path, n_shape=301)


def test_too_few_components_refused(tmp_path):
    small = make_flame_arrays(seed=1, n_shape=200, n_expr=50)
    with pytest.raises(HeadModelError, match="'shapedirs' has 250 components"):
        load_flame(write_flame_npz(tmp_path / "generic_model.npz", small))


# ------------------------------------------------------------------------------------ malicious pickles


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvaluatesCode:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (builtins.eval, (self.code,))


@pytest.mark.parametrize("protocol", [2, 4])
def test_os_system_pickle_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _RunsCommand(f"touch {marker}")}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as info:
        load_flame(path)
    message = str(info.value)
    assert str(path) in message
    assert "posix.system" in message or "os.system" in message
    assert "not a FLAME model" in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_eval_pickle_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path.write_bytes(pickle.dumps(_EvaluatesCode(code), protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"\.eval") as info:
        load_flame(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_reconstructor_only_builds_placeholders(tmp_path):
    # copy_reg._reconstructor(set, object, None): an allowed global used on a class that is not a placeholder.
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02ccopy_reg\n_reconstructor\nc__builtin__\nset\nc__builtin__\nobject\nN\x87R.")
    with pytest.raises(UnsafePickleError, match="_reconstructor"):
        load_flame(path)


def test_codecs_encode_only_for_latin1(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(UnsafePickleError, match="rot13"):
        load_flame(path)


# ------------------------------------------------------------------------------------ damaged or wrong files


def test_truncated_pickle(tmp_path, arrays):
    data = write_flame_pkl(tmp_path / "full.pkl", arrays).read_bytes()
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HeadModelError, match="truncated") as info:
        load_flame(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, UnsafePickleError)


def test_truncated_npz(tmp_path, arrays):
    data = write_flame_npz(tmp_path / "full.npz", arrays).read_bytes()
    path = tmp_path / "flame2023.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HeadModelError, match="truncated") as info:
        load_flame(path)
    assert str(path) in str(info.value)


def test_missing_key_named(tmp_path, arrays):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({k: v for k, v in arrays.items() if k != "v_template"}, protocol=2))
    with pytest.raises(HeadModelError, match="'v_template' is missing") as info:
        load_flame(path)
    assert str(path) in str(info.value) and "flame.is.tue.mpg.de" in str(info.value)


def test_not_a_dict(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(HeadModelError, match="not FLAME's dictionary"):
        load_flame(path)


def test_wrong_shape_named(tmp_path, arrays):
    bad = dict(arrays, posedirs=arrays["posedirs"][:, :, :27])
    with pytest.raises(HeadModelError, match=r"'posedirs' has shape \(60, 3, 27\), expected 60×3×36"):
        load_flame(write_flame_npz(tmp_path / "generic_model.npz", bad))


def test_faces_outside_template(tmp_path, arrays):
    faces = arrays["f"].copy()
    faces[0, 0] = 60
    with pytest.raises(HeadModelError, match="faces index vertices outside") as info:
        load_flame(write_flame_npz(tmp_path / "generic_model.npz", dict(arrays, f=faces)))
    assert "generic_model.npz" in str(info.value)


@pytest.mark.parametrize(
    "kintree",
    [
        [[ROOT_SENTINEL, 0, 0, 1, 1], [0, 1, 2, 3, 4]],  # jaw hanging off the root
        [[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 4, 3]],  # eyes swapped
        [[ROOT_SENTINEL, 0, 1, 1], [0, 1, 2, 3]],  # four joints
    ],
)
def test_bad_kintree(tmp_path, arrays, kintree):
    bad = dict(arrays, kintree_table=np.array(kintree, dtype=np.int64))
    with pytest.raises(HeadModelError, match="kintree_table"):
        load_flame(write_flame_pkl(tmp_path / "generic_model.pkl", bad))


def test_kintree_root_as_minus_one_and_uint32(tmp_path, arrays):
    for kintree in (np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]), np.array([[ROOT_SENTINEL, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.uint32)):
        model = load_flame(write_flame_npz(tmp_path / "generic_model.npz", dict(arrays, kintree_table=kintree)))
        assert tuple(model.parents) == (-1, 0, 1, 1, 1)


def test_nonexistent_path(tmp_path):
    path = tmp_path / "nowhere" / "generic_model.pkl"
    with pytest.raises(HeadModelError, match="no such file") as info:
        load_flame(path)
    assert str(path) in str(info.value)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "generic_model.obj"
    path.write_text("v 0 0 0\n")
    with pytest.raises(HeadModelError, match=r"expected \.pkl or \.npz"):
        load_flame(path)


def test_npz_with_pickled_member_refused(tmp_path, arrays):
    marker = tmp_path / "pwned"
    path = tmp_path / "flame2023.npz"
    with path.open("wb") as file:
        np.savez(file, **dict(arrays, J_regressor=np.array([_RunsCommand(f"touch {marker}")], dtype=object)))
    with pytest.raises(HeadModelError, match="pickles") as info:
        load_flame(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_chumpy_expression_without_value_refused(tmp_path, arrays):
    # A chumpy op object (no stored 'x') cannot be evaluated without chumpy: a clear error, not a wrong array.
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02}X\n\x00\x00\x00v_templatecchumpy.ch_ops\nadd\n)\x81}X\x01\x00\x00\x00aK\x01sbs.")
    with pytest.raises(HeadModelError, match="chumpy expression") as info:
        load_flame(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------ landmark embedding


def test_embedding_loads(tmp_path):
    emb_arrays = make_embedding_arrays(seed=3, n_faces=N_FACES)
    embedding = load_mediapipe_embedding(write_embedding_npz(tmp_path / "mediapipe_landmark_embedding.npz", **emb_arrays))
    np.testing.assert_array_equal(embedding.face_index, emb_arrays["lmk_face_idx"])
    np.testing.assert_array_equal(embedding.barycentric, emb_arrays["lmk_b_coords"].astype(np.float32))
    np.testing.assert_array_equal(embedding.mediapipe_index, emb_arrays["landmark_indices"])
    assert embedding.face_index.dtype == np.int64 and embedding.barycentric.dtype == np.float32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lmk_b_coords": np.full((105, 2), 0.5)}, r"'lmk_b_coords' has shape \(105, 2\), expected 105×3"),
        ({"landmark_indices": np.arange(104)}, r"'landmark_indices' has shape \(104,\), expected 105"),
        ({"lmk_face_idx": np.zeros((105, 1), np.int64)}, r"'lmk_face_idx' has shape \(105, 1\), expected N"),
        ({"lmk_face_idx": np.zeros(105)}, "'lmk_face_idx' holds float64 values, expected integers"),
        ({"lmk_face_idx": np.full(105, -1)}, "negative triangle indices"),
        ({"landmark_indices": np.arange(105) + 400}, "outside 0–477"),
    ],
)
def test_embedding_refused(tmp_path, change, message):
    emb_arrays = dict(make_embedding_arrays(seed=3, n_faces=N_FACES), **change)
    path = write_embedding_npz(tmp_path / "mediapipe_landmark_embedding.npz", **emb_arrays)
    with pytest.raises(HeadModelError, match=message) as info:
        load_mediapipe_embedding(path)
    assert str(path) in str(info.value)


def test_embedding_missing_key(tmp_path):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    np.savez(path, lmk_face_idx=np.zeros(105, np.int64))
    with pytest.raises(HeadModelError, match="'lmk_b_coords' is missing"):
        load_mediapipe_embedding(path)


def test_embedding_nonexistent(tmp_path):
    with pytest.raises(HeadModelError, match="no such file"):
        load_mediapipe_embedding(tmp_path / "mediapipe_landmark_embedding.npz")


def test_load_flame_with_embedding_gives_landmark_points(tmp_path, arrays):
    emb_arrays = make_embedding_arrays(seed=3, n_faces=N_FACES)
    emb_path = write_embedding_npz(tmp_path / "mediapipe_landmark_embedding.npz", **emb_arrays)
    model = load_flame(write_flame_pkl(tmp_path / "generic_model.pkl", arrays), landmark_embedding_path=emb_path)
    vertices = model.forward().vertices
    points = model.landmark_points(vertices)
    assert points.shape == (1, 105, 3)
    corners = vertices[0][arrays["f"][emb_arrays["lmk_face_idx"]].astype(np.int64)]  # (105, 3 corners, 3)
    expected = np.einsum("lc,lcx->lx", emb_arrays["lmk_b_coords"], corners)
    np.testing.assert_allclose(points[0], expected, atol=1e-6)


def test_embedding_that_does_not_fit_the_mesh(tmp_path, arrays):
    emb_arrays = make_embedding_arrays(seed=3, n_faces=N_FACES + 50)
    emb_arrays["lmk_face_idx"][0] = N_FACES + 10
    emb_path = write_embedding_npz(tmp_path / "mediapipe_landmark_embedding.npz", **emb_arrays)
    with pytest.raises(HeadModelError, match="does not fit generic_model.pkl") as info:
        load_flame(write_flame_pkl(tmp_path / "generic_model.pkl", arrays), landmark_embedding_path=emb_path)
    assert str(emb_path) in str(info.value)
