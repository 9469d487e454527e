"""Real 4D speech corpora in FLAME topology (VOCASET as FaceFormer lays it out) → MotionTracks.

Layout: ``<root>/wav/<name>.wav`` with ``<root>/vertices_npy/<name>.npy`` holding (T, V·3) or (T, V, 3)
registered FLAME-topology vertices in metres (VOCASET: 60 fps). The MediaPipe points come from FLAME's own
landmark embedding on those vertices, so a real corpus lands in the same motion space as the synthetic one.
VOCASET's own files must be downloaded by the user (its license requires registration).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio import load_audio
from ..errors import LatticeTalkError
from ..head_model import HeadModel
from ..lbs import barycentric_points
from ..motion_file import MotionTrack


def vocaset_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """(wav, vertices) pairs with matching names, sorted; missing halves are reported, not skipped silently."""
    root = Path(root)
    wav_dir, vert_dir = root / "wav", root / "vertices_npy"
    if not wav_dir.is_dir() or not vert_dir.is_dir():
        raise LatticeTalkError(f"{root}: expected wav/ and vertices_npy/ folders (FaceFormer's VOCASET layout)")
    wavs = {p.stem: p for p in wav_dir.glob("*.wav")}
    verts = {p.stem: p for p in vert_dir.glob("*.npy")}
    missing = sorted(set(wavs) ^ set(verts))
    if missing:
        raise LatticeTalkError(f"{root}: these sequences lack audio or vertices: {', '.join(missing[:10])}")
    return [(wavs[name], verts[name]) for name in sorted(wavs)]


def load_vocaset(root: str | Path, head: HeadModel, source_fps: float = 60.0, fps: float = 30.0) -> Iterator[MotionTrack]:
    """Each sequence as a MotionTrack at ``fps`` (every k-th frame of ``source_fps``); ``head`` gives the
    FLAME topology (faces) and MediaPipe embedding (load FLAME with its mediapipe_landmark_embedding.npz)."""
    if head.landmarks is None:
        raise LatticeTalkError(f"{head.head_id}: needs FLAME's MediaPipe landmark embedding to read a 4D corpus")
    step = source_fps / fps
    if abs(step - round(step)) > 1e-6:
        raise LatticeTalkError(f"source fps {source_fps} is not a whole multiple of {fps}")
    emb = head.landmarks
    neutral = head.landmark_points(head.v_template[None])[0]
    for wav, npy in vocaset_pairs(root):
        vertices = np.load(npy, allow_pickle=False)
        vertices = vertices.reshape(len(vertices), -1, 3)[:: int(round(step))].astype(np.float32)
        if vertices.shape[1] != head.n_vertices:
            raise LatticeTalkError(f"{npy}: {vertices.shape[1]} vertices per frame, the head has {head.n_vertices}")
        points = barycentric_points(vertices, head.faces, emb.face_index, emb.barycentric)
        audio = load_audio(wav)
        yield MotionTrack(fps=fps, points=points, point_ids=emb.mediapipe_index, neutral=neutral, audio=audio.samples,
                          sample_rate=audio.sample_rate, meta={"source": "vocaset", "name": wav.stem})
