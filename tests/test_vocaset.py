"""A FLAME-topology 4D corpus (FaceFormer's VOCASET layout) becomes MotionTracks via FLAME's embedding."""

from __future__ import annotations

import numpy as np
import pytest

from clip_fixtures import write_wav
from flame_fixtures import make_embedding_arrays, make_flame_arrays, write_embedding_npz, write_flame_npz
from lattice_talk.core.data.vocaset import load_vocaset
from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.flame_io import load_flame


def test_vocaset_sequences_become_motion_tracks(tmp_path):
    pytest.importorskip("soundfile")
    write_flame_npz(tmp_path / "flame2023.npz", make_flame_arrays(seed=1, n_vertices=90, n_faces=150))
    write_embedding_npz(tmp_path / "emb.npz", **make_embedding_arrays(seed=2, n_faces=150))
    head = load_flame(tmp_path / "flame2023.npz", landmark_embedding_path=tmp_path / "emb.npz")
    root = tmp_path / "vocaset"
    (root / "wav").mkdir(parents=True)
    (root / "vertices_npy").mkdir()
    rng = np.random.default_rng(0)
    expression = rng.normal(0, 1, (120, head.n_expression)).astype(np.float32)  # 2 s at 60 fps
    vertices = head.forward(expression=expression).vertices
    np.save(root / "vertices_npy" / "FaceTalk_01_sentence01.npy", vertices.reshape(120, -1))
    write_wav(root / "wav" / "FaceTalk_01_sentence01.wav", rng.normal(0, 0.1, 32000))
    (track,) = list(load_vocaset(root, head))
    assert track.n_frames == 60 and track.fps == 30.0 and len(track.point_ids) == 105
    expected = head.landmark_points(vertices[::2])
    assert np.abs(track.points - expected).max() < 1e-6
    assert abs(len(track.audio) / track.sample_rate - 2.0) < 1e-3

    (root / "wav" / "FaceTalk_01_sentence02.wav").write_bytes((root / "wav" / "FaceTalk_01_sentence01.wav").read_bytes())
    with pytest.raises(LatticeTalkError, match="sentence02"):
        list(load_vocaset(root, head))
