"""The default head's lid points and eyeBlink units: the lids meet where MediaPipe's do (build step 7).

1. Lid points along the lid. The embedding left each eye's upper lid points 1.5–3 mm outward of their lower partners
   (MediaPipe's canonical face has them straight above each other: 386 over 374, …), so even shut lids would read
   open. Each lid point slides along its own lid (the skin faces that move with it under the blink, or that stay)
   to the canonical face's place between the eye's corners, at the same height and depth as far as the lid allows.

2. MakeHuman's blink targets tuck the upper lid under the lower one: at eyeBlink 1 the upper lid's margin passes
   ~2 mm below the lower lid's and stays ~3 mm behind it, so the head's lid points (which the retarget fits and the
   real-video measure reads) never met: the middle pair's opening over the eye-corner distance went 0.104 → 0.046,
   a travel of 0.06 where a real speaker's closing eye reads ~0.09. Per eye, the blink's displacement field is
   rescaled (a) so the upper lid points come down exactly to the lower lid points' height at 1, and brought forward
   in proportion to each vertex's own vertical travel (c) so they meet in depth too: d' = a·d + c·|d_y|·ẑ. Both
   are least-squares fits over the three upper/lower point pairs; a head that already closes gives a = 1, c = 0
   (applying it twice changes nothing but fp16 rounding).
After both, the middle pair goes 0.100 → 0.006 (left) and 0.097 → 0.009 (right), a travel of ~0.09.

    python tools/eyelid_closure.py [--head vendor_models/default_head/default_head.npz]   # rewrites it in place
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLINK_UNITS = {"left": "eyeBlinkLeft", "right": "eyeBlinkRight"}  # the subject's sides, as core.video.eyes names them


def _points(head, values: np.ndarray, ids: list[int]) -> np.ndarray:
    """(len(ids), 3) the MediaPipe points ``ids`` of per-vertex ``values`` (V, 3) through the embedding."""
    rows = [int(np.flatnonzero(head.landmarks.mediapipe_index == i)[0]) for i in ids]
    return head.landmark_points(values[None])[0][rows]


def _closest_on_faces(head, faces: np.ndarray, target: np.ndarray) -> tuple[int, np.ndarray]:
    """The face (index into head.faces) and barycentric weights of the point of ``faces`` nearest ``target``
    (a 20-step barycentric grid per face: the lid's faces are ~1 mm, so the grid is finer than 0.1 mm)."""
    steps = np.linspace(0.0, 1.0, 21)
    a, b = np.meshgrid(steps, steps)
    keep = a + b <= 1.0 + 1e-9
    weights = np.stack([a[keep], b[keep], 1.0 - a[keep] - b[keep]], axis=1).clip(0.0, 1.0)
    corners = head.v_template[head.faces[faces]].astype(np.float64)  # (F, 3, 3)
    candidates = np.einsum("wk,fkc->fwc", weights, corners)
    distance = np.linalg.norm(candidates - target, axis=2)
    face, sample = np.unravel_index(np.argmin(distance), distance.shape)
    return int(faces[face]), weights[sample].astype(np.float32)


def align_lid_points(head):
    """The head with each eye's lid points moved along their own lid to MediaPipe's canonical places (step 1)."""
    from lattice_talk.core.head_model import LandmarkEmbedding
    from lattice_talk.core.video.eyes import EYE_GEOMETRY

    canonical = np.load(REPO / "vendor_models" / "face_mesh" / "canonical_face_model.npy")
    embedding = head.landmarks
    face_index, barycentric = embedding.face_index.copy(), embedding.barycentric.copy()
    skin = np.zeros(head.n_vertices, bool)
    skin[head.regions["skin"]] = True
    centres = head.v_template[head.faces].mean(axis=1)
    for side, (outer, inner, pairs) in EYE_GEOMETRY.items():
        reach = np.linalg.norm(head.exprdirs[:, :, head.expression_names.index(BLINK_UNITS[side])].astype(np.float64), axis=1)
        x_outer, x_inner = _points(head, head.v_template, [outer, inner])[:, 0]
        for point in [i for pair in pairs for i in pair]:
            row = int(np.flatnonzero(embedding.mediapipe_index == point)[0])
            here = _points(head, head.v_template, [point])[0]
            share = (canonical[point, 0] - canonical[inner, 0]) / (canonical[outer, 0] - canonical[inner, 0])
            target = np.array([x_inner + share * (x_outer - x_inner), here[1], here[2]])
            # The point's own lid: skin faces within 6 mm that move with it under the blink (upper lid) or stay.
            moves = reach[head.faces[face_index[row]]].mean() > 0.5 * reach.max()
            lid = skin[head.faces].all(axis=1) & (np.linalg.norm(centres - here, axis=1) < 6e-3)
            lid &= (reach[head.faces].min(axis=1) > 0.5 * reach.max()) if moves else (reach[head.faces].max(axis=1) < 0.05 * reach.max())
            face_index[row], barycentric[row] = _closest_on_faces(head, np.flatnonzero(lid), target)
    return head.with_landmarks(LandmarkEmbedding(face_index, barycentric, embedding.mediapipe_index))


def close_eyelids(head):
    """The head with each eyeBlink unit rescaled and brought forward so its lid points meet at 1 (see above)."""
    from lattice_talk.core.video.eyes import EYE_GEOMETRY

    exprdirs = np.array(head.exprdirs, np.float64, copy=True)
    for side, (_, _, pairs) in EYE_GEOMETRY.items():
        unit = head.expression_names.index(BLINK_UNITS[side])
        move = exprdirs[:, :, unit]
        upper_ids, lower_ids = [u for u, _ in pairs], [lo for _, lo in pairs]
        rest_up, rest_lo = _points(head, head.v_template, upper_ids), _points(head, head.v_template, lower_ids)
        d_up, d_lo = _points(head, move, upper_ids), _points(head, move, lower_ids)
        # 1. Height: a·(dy_up − dy_lo) = y_lo − y_up.
        dy = d_up[:, 1] - d_lo[:, 1]
        a = float(np.dot(dy, rest_lo[:, 1] - rest_up[:, 1]) / np.dot(dy, dy))
        # 2. Depth: a·(dz_up − dz_lo) + c·(|dy_up| − |dy_lo|) = z_lo − z_up.
        lift = np.abs(d_up[:, 1]) - np.abs(d_lo[:, 1])
        c = float(np.dot(lift, rest_lo[:, 2] - rest_up[:, 2] - a * (d_up[:, 2] - d_lo[:, 2])) / np.dot(lift, lift))
        corrected = a * move
        corrected[:, 2] += c * np.abs(move[:, 1])
        exprdirs[:, :, unit] = corrected
        print(f"  {BLINK_UNITS[side]}: travel × {a:.3f}, forward {c:.3f} per unit of vertical travel")
    head.exprdirs = exprdirs.astype(head.exprdirs.dtype)
    return head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, default=REPO / "vendor_models" / "default_head" / "default_head.npz")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO.parent))
    from lattice_talk.core.heads import create

    head = close_eyelids(align_lid_points(create(args.head)))
    head.save(args.head)
    print(f"wrote {args.head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
