"""The face-mesh graph for mesh convolution: MediaPipe's tessellation and SpiralNet++ spiral tables.

numpy only (no torch), so topology can be built and inspected anywhere; ``core.motion.meshconv`` turns
the tables into layer buffers.

Vertices are MediaPipe's face-mesh points: 468 from the canonical face model, plus (``iris=True``) the
10 refined iris points 468–477. The canonical model's triangles close each eye opening with 14
lid-to-lid triangles; with the iris those are replaced by a fan that joins the iris ring to its eye's
16-point lid contour, so the iris points are ordinary vertices of one connected, consistently oriented
mesh (the lids then connect through the iris instead of directly).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..mediapipe_points import EYES, N_FACE_POINTS

TESSELLATION_PATH = Path(__file__).resolve().parents[2] / "vendor_models" / "face_mesh" / "tessellation.npz"
N_POINTS = 478
RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR = EYES[:16], EYES[16:]  # cyclic, the subject's right and left eye
# Iris centre and ring; the ring runs +X side (subject's left), top, −X side, bottom — checked on MediaPipe
# 0.10.21 output (469 lies towards 133, 470 towards 159; 474 towards 263, 475 towards 386).
IRIS = {"right": (468, (469, 470, 471, 472)), "left": (473, (474, 475, 476, 477))}


# ------------------------------------------------------------------------------------ building the file


def read_canonical_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (468, 3) and 0-based triangles (898, 3) of MediaPipe's ``canonical_face_model.obj``."""
    lines = Path(path).read_text().splitlines()
    vertices = np.array([line.split()[1:4] for line in lines if line.startswith("v ")], dtype=np.float64)
    triangles = np.array([[int(corner.split("/")[0]) - 1 for corner in line.split()[1:4]]
                          for line in lines if line.startswith("f ")], dtype=np.int64)
    return vertices, triangles


def iris_fill(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the lid-to-lid triangles to drop, the triangles that fill both eyes with the iris)."""
    drop: list[int] = []
    fill: list[tuple[int, int, int]] = []
    for contour, (centre, ring) in ((RIGHT_EYE_CONTOUR, IRIS["right"]), (LEFT_EYE_CONTOUR, IRIS["left"])):
        inside = np.isin(triangles, contour).all(axis=1)
        drop.extend(np.flatnonzero(inside).tolist())
        # Ring directions in the face plane: +X, +Y (top), −X, −Y; each lid point joins the ring point it faces.
        pts = vertices[list(contour)]
        middle = pts.mean(axis=0)
        angle = np.arctan2(pts[:, 1] - middle[1], pts[:, 0] - middle[0])
        quadrant = np.round(angle / (np.pi / 2)).astype(int) % 4
        n = len(contour)
        for i in range(n):
            a, b = contour[i], contour[(i + 1) % n]
            qa, qb = ring[quadrant[i]], ring[quadrant[(i + 1) % n]]
            fill.append((a, b, qa))
            if qa != qb:
                fill.append((b, qb, qa))
        fill.extend((centre, ring[k], ring[(k + 1) % 4]) for k in range(4))
    kept = np.delete(triangles, drop, axis=0)
    return np.array(drop, dtype=np.int64), _orient_like(kept, np.array(fill, dtype=np.int64))


def _orient_like(oriented: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Flip triangles of ``new`` so every edge shared with an oriented triangle runs the other way
    (a consistently oriented mesh), spreading from the triangles that touch ``oriented``."""
    directed = {(a, b) for tri in oriented.tolist() for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))}
    new = new.copy()
    pending = list(range(len(new)))
    while pending:
        progress = False
        for i in list(pending):
            a, b, c = new[i].tolist()
            edges = ((a, b), (b, c), (c, a))
            if any(e in directed for e in edges):  # an oriented neighbour runs this way: flip
                new[i] = (a, c, b)
            elif not any((e[1], e[0]) in directed for e in edges):
                continue  # no oriented neighbour yet
            a, b, c = new[i].tolist()
            directed.update(((a, b), (b, c), (c, a)))
            pending.remove(i)
            progress = True
        if not progress:
            raise ValueError("iris fill does not connect to the face mesh")
    return new


def build_tessellation(obj_path: str | Path, out_path: str | Path = TESSELLATION_PATH) -> Path:
    """Write ``tessellation.npz`` from MediaPipe's canonical face model (Apache-2.0)."""
    vertices, triangles = read_canonical_obj(obj_path)
    drop, fill = iris_fill(vertices, triangles)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, triangles=triangles.astype(np.int16), eye_triangles=drop.astype(np.int16),
                        iris_triangles=fill.astype(np.int16),
                        source_sha256=np.array(hashlib.sha256(Path(obj_path).read_bytes()).hexdigest()))
    return out_path


# ------------------------------------------------------------------------------------ graph


@lru_cache(maxsize=2)
def face_mesh_triangles(iris: bool = True) -> np.ndarray:
    """MediaPipe's triangles (468 points), or with ``iris`` the 478-point mesh described above."""
    with np.load(TESSELLATION_PATH, allow_pickle=False) as data:
        triangles = data["triangles"].astype(np.int64)
        if not iris:
            return triangles
        keep = np.ones(len(triangles), bool)
        keep[data["eye_triangles"]] = False
        return np.concatenate([triangles[keep], data["iris_triangles"].astype(np.int64)])


def ordered_one_rings(triangles: np.ndarray, n_vertices: int) -> list[list[int]]:
    """Each vertex's neighbours in cyclic order around it (following the triangles' orientation); a
    boundary vertex's fan starts at its boundary edge."""
    following: list[dict[int, int]] = [dict() for _ in range(n_vertices)]
    for a, b, c in triangles.tolist():
        following[a][b] = c
        following[b][c] = a
        following[c][a] = b
    rings = []
    for v in range(n_vertices):
        nxt = following[v]
        if not nxt:
            rings.append([])
            continue
        starts = set(nxt) - set(nxt.values())  # a boundary fan starts where no triangle leads in
        current = min(starts) if starts else min(nxt)
        ring = [current]
        while current in nxt and nxt[current] not in ring:
            current = nxt[current]
            ring.append(current)
        # A vertex whose fan is split in pieces (non-manifold) still lists every neighbour once.
        ring += sorted((set(nxt) | set(nxt.values())) - set(ring))
        rings.append(ring)
    return rings


def graph_distances(triangles: np.ndarray, n_vertices: int, source: int) -> np.ndarray:
    """Edge-hop distance from ``source`` to every vertex (−1 where unreachable)."""
    rings = ordered_one_rings(triangles, n_vertices)
    dist = np.full(n_vertices, -1, np.int64)
    dist[source] = 0
    queue = deque([source])
    while queue:
        v = queue.popleft()
        for u in rings[v]:
            if dist[u] < 0:
                dist[u] = dist[v] + 1
                queue.append(u)
    return dist


def _next_ring(rings: list[list[int]], last_ring: list[int], taken: set[int]) -> list[int]:
    """The vertices one hop beyond ``last_ring``, walked in spiral order (SpiralNet++'s traversal: around
    each vertex of the last ring, starting after the last-ring neighbour)."""
    result: list[int] = []
    seen = set(taken) | set(last_ring)
    last = set(last_ring)
    for v in last_ring:
        ring = rings[v]
        first = next((i for i, u in enumerate(ring) if u in last), 0)
        for u in ring[first + 1:] + ring[:first + 1]:
            if u not in seen:
                seen.add(u)
                result.append(u)
    return result


def spiral_indices(triangles: np.ndarray, n_vertices: int, length: int, dilation: int = 1) -> np.ndarray:
    """(V, length) SpiralNet++ spirals: vertex v, its 1-ring in cyclic order, then the 2-ring, … (every
    ``dilation``-th entry), truncated to ``length``. Spirals only run out in a component smaller than
    ``length · dilation``; they are then padded with their last vertex."""
    rings = ordered_one_rings(triangles, n_vertices)
    need = length * dilation
    table = np.empty((n_vertices, length), np.int64)
    for v in range(n_vertices):
        spiral = [v]
        taken = {v}
        ring = list(rings[v])
        while ring and len(spiral) < need:
            spiral += ring
            taken.update(ring)
            ring = _next_ring(rings, ring, taken)
        spiral = spiral[:need][::dilation]
        table[v] = spiral + [spiral[-1]] * (length - len(spiral))
    return table


@dataclass(frozen=True)
class FaceMeshGraph:
    """The face-mesh graph a model runs on: its triangles and spiral tables."""

    triangles: np.ndarray
    n_vertices: int

    @classmethod
    def mediapipe(cls, iris: bool = True) -> FaceMeshGraph:
        return cls(face_mesh_triangles(iris), N_POINTS if iris else N_FACE_POINTS)

    def edges(self) -> np.ndarray:
        """(E, 2) undirected edges, each once, smaller index first."""
        t = self.triangles
        pairs = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        return np.unique(np.sort(pairs, axis=1), axis=0)

    def spirals(self, length: int, dilation: int = 1) -> np.ndarray:
        return spiral_indices(self.triangles, self.n_vertices, length, dilation)


if __name__ == "__main__":  # python -m lattice_talk.core.motion.topology path/to/canonical_face_model.obj
    import sys

    print(build_tessellation(sys.argv[1]))
