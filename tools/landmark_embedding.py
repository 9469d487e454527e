"""MediaPipe landmark embedding of a head: render it, run MediaPipe face mesh, cast the points back.

Used by ``build_default_head.py``. Needs ``bpy`` and ``mediapipe==0.10.21`` (its face-mesh model ships in
the wheel). The canonical face model (Apache-2.0) checks the result: after a similarity alignment, a point
far from its canonical position is replaced by the canonical point's closest point on the mesh.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CANONICAL_OBJ = REPO.parent / "shared" / "assets" / "mediapipe_face_geometry" / "canonical_face_model.obj"
RESOLUTION = 640
OUTLIER_MM = 12.0
# MediaPipe's inner-lip contour. At rest these lie on the lip seam, where a frontal ray slips between
# the lips into the mouth; each is snapped to the seam edge of *its own* lip instead (upper points onto
# faces that stay with the skull, lower points onto faces that follow the jaw), so the lips part when
# the jaw opens and touch at rest (see _snap_to_lip_seam).
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_PROBE_M = 0.002
SEAM_SEARCH_DEPTH_M = 0.012
JAW_JOINT = 2  # the canonical face is a generic adult; MakeHuman proportions differ by ~5 mm


def _render_front(head, out_png: Path) -> "FrontView":
    import bpy

    from lattice_talk.scene.head_builder import build_head
    from lattice_talk.scene.materials import assign_materials
    from lattice_talk.scene.render import FrontView, render_still, setup_front_render

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    objs = build_head(head, with_armature=False)
    objs.mesh.modifiers.new("Subdivision", "SUBSURF").levels = 1
    objs.mesh.modifiers["Subdivision"].render_levels = 1
    assign_materials(objs.mesh, np.concatenate([head.regions["eye_L"], head.regions["eye_R"]]))
    eye_y = float(head.j_regressor[3] @ head.v_template[:, 1])
    view = FrontView(centre=(0.0, 0.0, eye_y - 0.035), size=0.25, resolution=RESOLUTION)
    setup_front_render(scene, view, samples=32)
    render_still(scene, out_png)
    return view


def _detect(png: Path) -> np.ndarray:
    """478 MediaPipe points as normalised (u, v) image coordinates."""
    import cv2
    import mediapipe as mp

    image = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        raise RuntimeError(f"MediaPipe found no face in {png}")
    return np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark])


def _barycentric(point: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = tri
    m = np.stack([b - a, c - a], axis=1)
    st, *_ = np.linalg.lstsq(m, point - a, rcond=None)
    return np.array([1.0 - st.sum(), st[0], st[1]])


def read_canonical() -> np.ndarray:
    pts = [line.split()[1:4] for line in CANONICAL_OBJ.read_text().splitlines() if line.startswith("v ")]
    return np.array(pts, dtype=np.float64) / 100.0  # centimetres → metres


def similarity_fit(src: np.ndarray, dst: np.ndarray):
    """Umeyama: the similarity transform (scale·R·x + t) taking ``src`` closest to ``dst``, as a function."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d0.T @ s0)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = (sig * np.diag(d)).sum() / (s0 ** 2).sum()
    return lambda x: scale * (x - mu_s) @ rot.T + mu_d


def _lip_trees(head):
    """BVH trees over the faces that stay with the skull (upper lip) and those that follow the jaw."""
    from mathutils.bvhtree import BVHTree

    jaw_share = head.lbs_weights[head.faces, JAW_JOINT].mean(axis=1)
    verts = head.v_template.astype(np.float64).tolist()
    trees = {}
    for name, mask in (("upper", jaw_share < 0.5), ("lower", jaw_share >= 0.5)):
        index = np.flatnonzero(mask)
        trees[name] = (BVHTree.FromPolygons(verts, head.faces[index].tolist()), index)
    return trees


def _snap_to_lip_seam(tree, lips: dict, side: str, x: float, y: float) -> tuple[tuple[float, float, float], int]:
    """The point of lip ``side`` where it meets the other lip at (x, y): walk inwards from the lips' front
    surface and keep the depth at which the nearest upper-lip and lower-lip points are closest."""
    from mathutils import Vector

    depths = []
    for dy in (LIP_PROBE_M, -LIP_PROBE_M):
        loc, _normal, _index, _dist = tree.ray_cast(Vector((x, y + dy, 1.0)), Vector((0.0, 0.0, -1.0)))
        if loc is not None:
            depths.append(loc.z)
    best = None
    for z in np.linspace(max(depths), max(depths) - SEAM_SEARCH_DEPTH_M, 41):
        found = {name: lips[name][0].find_nearest(Vector((x, y, z))) for name in ("upper", "lower")}
        gap = (found["upper"][0] - found["lower"][0]).length
        if best is None or gap < best[0]:
            best = (gap, found)
    loc, _normal, index, _dist = best[1][side]
    return tuple(loc), int(lips[side][1][index])


def embed_mediapipe_points(head, render_dir: Path | None = None):
    import bpy  # noqa: F401  (the bpy wheel provides mathutils only once bpy is imported)
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    from lattice_talk.core.head_model import LandmarkEmbedding

    render_dir = Path(render_dir or tempfile.mkdtemp(prefix="lt_embed_"))
    png = render_dir / "landmark_front.png"
    view = _render_front(head, png)
    uv = _detect(png)
    x, y = view.pixel_to_world_xz(uv[:, 0], uv[:, 1])  # world X/Z of the turned object = head X/Y

    verts = head.v_template.astype(np.float64)
    tree = BVHTree.FromPolygons(verts.tolist(), head.faces.tolist())
    hits = np.full((len(uv), 3), np.nan)
    face_of = np.full(len(uv), -1)
    for i in range(len(uv)):
        loc, _normal, index, _dist = tree.ray_cast(Vector((x[i], y[i], 1.0)), Vector((0.0, 0.0, -1.0)))
        if loc is not None:
            hits[i], face_of[i] = tuple(loc), index

    # Eye-contour points belong on the lid margins: a ray that slipped through the eye opening onto the
    # eyeball is moved to the nearest lid (skin) point, so blinks move them.
    eyeball_faces = np.isin(head.faces, np.concatenate([head.regions["eye_L"], head.regions["eye_R"]])).any(axis=1)
    skin_faces = np.flatnonzero(~eyeball_faces)
    skin_tree = BVHTree.FromPolygons(verts.tolist(), head.faces[skin_faces].tolist())
    for i in np.flatnonzero(eyeball_faces[np.maximum(face_of[:468], 0)] & (face_of[:468] >= 0)):
        loc, _normal, index, _dist = skin_tree.find_nearest(Vector(hits[i].tolist()))
        hits[i], face_of[i] = tuple(loc), int(skin_faces[index])

    lips = _lip_trees(head)
    for side, points in (("upper", UPPER_INNER_LIP), ("lower", LOWER_INNER_LIP)):
        for i in points:
            hits[i], face_of[i] = _snap_to_lip_seam(tree, lips, side, x[i], y[i])

    # Check against MediaPipe's canonical model (468 points, no iris) and repair outliers.
    canonical = read_canonical()
    ok = ~np.isnan(hits[:468, 0])
    residual = np.linalg.norm(similarity_fit(canonical[ok], hits[:468][ok])(canonical) - hits[:468], axis=1) * 1000
    bad = np.flatnonzero(~ok | (residual > OUTLIER_MM))
    if len(bad):  # re-fit on the good points only, then project the canonical point onto the mesh
        good = np.setdiff1d(np.arange(468), bad)
        refit = similarity_fit(canonical[good], hits[good])(canonical)
        for i in bad:
            loc, _normal, index, _dist = tree.find_nearest(Vector(refit[i].tolist()))
            hits[i], face_of[i] = tuple(loc), index
    missing = np.flatnonzero(face_of < 0)
    if len(missing):
        raise RuntimeError(f"iris points {missing.tolist()} missed the mesh")
    bary = np.array([_barycentric(hits[i], verts[head.faces[face_of[i]]]) for i in range(len(uv))])
    print(f"  landmarks: {len(uv)} MediaPipe points embedded; canonical-model residual median "
          f"{np.nanmedian(residual):.2f} mm, {len(bad)} outliers (> {OUTLIER_MM} mm) projected from the canonical model")
    return LandmarkEmbedding(face_index=face_of.astype(np.int64), barycentric=bary.astype(np.float32),
                             mediapipe_index=np.arange(len(uv), dtype=np.int64))
