"""The visible parts of a head that are not skin: eyeballs with iris and pupil, upper and lower teeth, tongue and a
cap that closes the neck's cut end — as separate meshes, so the face mesh (its vertices, head id and landmark
embedding, which the speech and video models depend on) stays as it is.

The default head carries eye, teeth and tongue *helpers* inside its face mesh (regions ``eye_L``, ``eye_R``,
``teeth``, ``tongue``): they follow the bones and the expression units (``eyeLook*``, ``jaw*``, ``tongueOut``) but
are too coarse to show an iris. Each part is built from its helper region and follows it through a *transfer*
matrix: the part's offsets are ``transfer @ offsets[source]`` for any offset basis of the face (expressions,
pose correctives), exactly for parts that are copies of the helper (teeth, tongue, neck cap; the upper teeth sit a
little lower) and as the best affine fit for the procedural eyeballs (an eyeLook unit turns the helper eyeball
almost rigidly). Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .head_model import JOINT_NAMES, HeadModel

EYE_SEGMENTS = 32  # around the gaze axis
EYE_BACK_RINGS = 12  # from the iris edge to the back pole
# Angles from the gaze axis (+Z) of the pupil's and the iris's edge: an iris ~12 mm across on the default head's
# 13.8 mm eyeball. Rings of the sphere lie exactly on these angles, so both edges are round at any resolution.
PUPIL_ANGLE, IRIS_ANGLE = np.radians(11.0), np.radians(25.0)
SCLERA, IRIS, PUPIL, TEETH, TONGUE, SKIN = "sclera", "iris", "pupil", "teeth", "tongue", "skin"
HELPER_REGIONS = ("eye_L", "eye_R", "teeth", "tongue")  # shown by the parts instead
# The helper's upper teeth end 1.3 mm under the lips' seam, so the upper lip hides them even with the jaw wide
# open; this much lower their edges show as in most faces, in front of the lower row (an overbite) at rest.
UPPER_TEETH_DROP_M = 0.0025
NECK_CAP_DROP_M = 0.002  # the neck cap's level edge, under the lowest point of the cut
NECK_CAP_SMOOTHING = 10  # rounds of neighbour averaging that round the cap's edge (its radius shrinks ~5 %)


@dataclass(frozen=True)
class HeadPart:
    """One part in the head's rest frame (FLAME's: metres, +Y up, face along +Z)."""

    name: str
    bone: str | None  # the bone it moves with rigidly; None: skinned with ``weights`` (the neck cap)
    vertices: np.ndarray  # (n, 3) rest positions
    faces: np.ndarray  # (f, 3) int
    face_material: np.ndarray  # (f,) index into ``materials``
    materials: tuple[str, ...]
    source: np.ndarray  # (m,) face-mesh vertices the part follows
    transfer: np.ndarray  # (n, m) part offsets = transfer @ face offsets at ``source``

    def offsets(self, basis: np.ndarray) -> np.ndarray:
        """(V, 3, K) offsets of the face mesh (e.g. ``exprdirs``) → (n, 3, K) offsets of this part."""
        return np.einsum("nm,mck->nck", self.transfer, basis[self.source])

    def weights(self, head: HeadModel) -> np.ndarray:
        """(n, J) skin weights carried over from the face mesh (the neck cap's bones)."""
        return self.transfer @ head.lbs_weights[self.source]


def head_parts(head: HeadModel, rest: np.ndarray | None = None) -> list[HeadPart]:
    """The parts of ``head`` whose helper regions it has (the default head: all; FLAME heads: none but the neck
    cap, which every head with an open neck gets). ``rest``: the rest vertices (identity shape baked in)."""
    rest = head.v_template if rest is None else rest
    joints = head.j_regressor @ rest
    parts = []
    for eye in ("eye_L", "eye_R"):  # region, bone and joint share the name
        if len(head.regions.get(eye, ())):
            parts.append(_eyeball(eye, rest, head.regions[eye], joints[JOINT_NAMES.index(eye)]))
    teeth = np.asarray(head.regions.get("teeth", ()), np.int64)
    if len(teeth):
        # The helper's upper row is skinned to the head, the lower row to the jaw (weights 0 or 1, none between).
        lower = head.lbs_weights[teeth, JOINT_NAMES.index("jaw")] >= 0.5
        upper = _copy("teeth_upper", "neck", head, rest, teeth[~lower], TEETH)
        parts.append(replace(upper, vertices=upper.vertices - [0.0, UPPER_TEETH_DROP_M, 0.0]))
        parts.append(_copy("teeth_lower", "jaw", head, rest, teeth[lower], TEETH))
    if len(head.regions.get("tongue", ())):
        parts.append(_copy("tongue", "jaw", head, rest, np.asarray(head.regions["tongue"], np.int64), TONGUE))
    cap = neck_cap(head, rest)
    if cap is not None:
        parts.append(cap)
    return parts


def _copy(name: str, bone: str, head: HeadModel, rest: np.ndarray, source: np.ndarray, material: str) -> HeadPart:
    """A part that is the helper's own faces (exact copies of its vertices)."""
    source = np.sort(source)
    faces = head.faces[np.isin(head.faces, source).all(axis=1)]
    return HeadPart(name, bone, rest[source].copy(), np.searchsorted(source, faces), np.zeros(len(faces), np.int64),
                    (material,), source, np.eye(len(source)))


def _eyeball(name: str, rest: np.ndarray, source: np.ndarray, centre: np.ndarray) -> HeadPart:
    """A UV sphere around the eye joint, pole on the gaze axis, over the helper eyeball (radius: its farthest vertex,
    so the coarse helper stays inside), with pupil, iris and sclera faces."""
    source = np.sort(np.asarray(source, np.int64))
    radius = float(np.linalg.norm(rest[source] - centre, axis=1).max())
    theta = np.concatenate([[PUPIL_ANGLE, IRIS_ANGLE], np.linspace(IRIS_ANGLE, np.pi, EYE_BACK_RINGS + 1)[1:-1]])
    phi = np.linspace(0.0, 2 * np.pi, EYE_SEGMENTS, endpoint=False)
    ring = np.stack([np.sin(theta)[:, None] * np.cos(phi), np.sin(theta)[:, None] * np.sin(phi),
                     np.cos(theta)[:, None] * np.ones_like(phi)], axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]])
    vertices = centre + radius * unit
    n_rings, seg = len(theta), EYE_SEGMENTS
    nxt = (np.arange(seg) + 1) % seg
    front = np.stack([np.zeros(seg, np.int64), 1 + np.arange(seg), 1 + nxt], axis=1)
    back_pole = len(vertices) - 1
    back = np.stack([np.full(seg, back_pole), 1 + (n_rings - 1) * seg + nxt, 1 + (n_rings - 1) * seg + np.arange(seg)],
                    axis=1)
    bands = []
    for r in range(n_rings - 1):
        a, b = 1 + r * seg + np.arange(seg), 1 + r * seg + nxt
        bands += [np.stack([a, a + seg, b + seg], axis=1), np.stack([a, b + seg, b], axis=1)]
    faces = np.concatenate([front, *bands, back])
    # Material by the band a face lies in: the front fan is the pupil, the first band the iris.
    material = np.concatenate([np.full(seg, 2), np.full(2 * seg, 1), np.zeros(len(faces) - 3 * seg, np.int64)])
    return HeadPart(name, name, vertices, faces, material, (SCLERA, IRIS, PUPIL), source,
                    _affine_transfer(vertices, rest[source]))


def _affine_transfer(points: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(n, m) matrix taking offsets at ``anchors`` to offsets at ``points`` through their least-squares affine
    map: exact for any affine motion of the anchors (a rigid turn of the helper eyeball, up to the
    linearisation a shape key makes anyway)."""
    def homogeneous(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    return homogeneous(points) @ np.linalg.pinv(homogeneous(anchors))


def neck_cap(head: HeadModel, rest: np.ndarray) -> HeadPart | None:
    """A cap on the lowest open loop of the skin (the neck's cut end): a skirt from the loop straight down to one
    level, so the jagged cut ends in a level edge, closed there by a fan; skinned and shaped like the loop it
    hangs from. None when the skin has no open loop."""
    skin = head.regions.get("skin")
    faces = head.faces if skin is None else head.faces[np.isin(head.faces, skin).all(axis=1)]
    loop = _lowest_boundary_loop(faces, rest)
    if loop is None:
        return None
    n = len(loop)
    # The level edge is the loop smoothed around itself (rounder, so a fan from its centre never folds) and
    # follows the loop through the same averaging.
    smooth = np.linalg.matrix_power(0.5 * np.eye(n) + 0.25 * np.roll(np.eye(n), 1, axis=1)
                                    + 0.25 * np.roll(np.eye(n), -1, axis=1), NECK_CAP_SMOOTHING)
    top, bottom = rest[loop], smooth @ rest[loop]
    bottom[:, 1] = top[:, 1].min() - NECK_CAP_DROP_M
    vertices = np.concatenate([top, bottom, bottom.mean(axis=0, keepdims=True)])
    transfer = np.concatenate([np.eye(n), smooth, np.full((1, n), 1.0 / n)])
    i, j = np.arange(n), (np.arange(n) + 1) % n
    # One consistent winding: the skirt's triangles and the fan cross their shared edges in opposite directions.
    tris = np.concatenate([np.stack([i, n + i, n + j], axis=1), np.stack([i, n + j, j], axis=1),
                           np.stack([np.full(n, 2 * n), n + j, n + i], axis=1)])
    fan = vertices[tris[2 * n:]]
    if np.cross(fan[:, 1] - fan[:, 0], fan[:, 2] - fan[:, 0])[:, 1].sum() > 0:  # the loop ran the other way round
        tris = tris[:, ::-1]  # so that the fan faces down, away from the head, and the skirt out
    return HeadPart("neck_cap", None, vertices, tris, np.zeros(len(tris), np.int64), (SKIN,), loop, transfer)


def _lowest_boundary_loop(faces: np.ndarray, rest: np.ndarray) -> np.ndarray | None:
    """The closed loop of boundary edges (edges of one face) with the lowest mean height, as ordered vertices."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys, counts = np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)
    boundary = keys[counts == 1]
    neighbours: dict[int, list[int]] = {}
    for a, b in boundary.tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in neighbours:
        if start in seen or len(neighbours[start]) != 2:
            continue
        loop, previous, current = [start], None, start
        while True:
            seen.add(current)
            step = [v for v in neighbours[current] if v != previous]
            if not step or len(neighbours[current]) != 2:
                break
            previous, current = current, step[0]
            if current == start:
                loops.append(np.array(loop))
                break
            loop.append(current)
    if not loops:
        return None
    return min(loops, key=lambda lp: rest[lp, 1].mean())
