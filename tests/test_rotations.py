"""numpy-only rotations (for Blender's Python, which has no scipy) checked against scipy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from lattice_talk.core.rotations import axis_angle_to_quat, mean_rotation, quat_to_axis_angle, slerp_track


def test_axis_angle_quaternion_round_trip_matches_scipy():
    rng = np.random.default_rng(0)
    rotvecs = rng.normal(0, 1.0, (200, 3))
    rotvecs[0] = 0.0  # identity
    quats = axis_angle_to_quat(rotvecs)
    scipy_wxyz = np.roll(Rotation.from_rotvec(rotvecs).as_quat(), 1, axis=-1)
    assert np.allclose(np.abs(np.sum(quats * scipy_wxyz, axis=-1)), 1.0, atol=1e-12)
    back = quat_to_axis_angle(quats)
    assert np.allclose(Rotation.from_rotvec(back).as_matrix(), Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-10)
    assert np.all(np.linalg.norm(back, axis=-1) <= np.pi + 1e-12)


def test_slerp_track_matches_scipy():
    rng = np.random.default_rng(1)
    track = rng.normal(0, 0.8, (12, 3))
    positions = np.linspace(0, 11, 57)
    ours = slerp_track(track, positions)
    ref = Slerp(np.arange(12), Rotation.from_rotvec(track))(positions)
    assert np.allclose(Rotation.from_rotvec(ours).as_matrix(), ref.as_matrix(), atol=1e-9)


def test_mean_rotation_is_scipys_slerp_midpoint_also_across_the_quaternion_sign():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1.0, (50, 3)), rng.normal(0, 1.0, (50, 3))
    b[0] = a[0] + 2 * np.pi * a[0] / np.linalg.norm(a[0])  # same rotation, opposite quaternion sign
    expected = [Slerp([0, 1], Rotation.from_rotvec([x, y]))(0.5).as_matrix() for x, y in zip(a, b)]
    assert np.allclose(Rotation.from_rotvec(mean_rotation(a, b)).as_matrix(), expected, atol=1e-10)


def test_blender_facing_core_needs_numpy_only(tmp_path):
    """Add Head and Apply Clip run in Blender's own Python: numpy, but no scipy, safetensors or torch."""
    tests_dir = Path(__file__).resolve().parent
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('scipy', 'safetensors', 'torch'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(tests_dir)!r})
import numpy as np
from lattice_talk.core.heads import create
from lattice_talk.core.clip import AnimationClip
from flame_fixtures import make_flame_arrays, write_flame_pkl
head = create('default')
head.forward(pose=np.zeros((1, 5, 3), np.float32))
write_flame_pkl({str(tmp_path / 'generic_model.pkl')!r}, make_flame_arrays(seed=0))
create({str(tmp_path / 'generic_model.pkl')!r})
clip = AnimationClip(fps=30, start_frame=1, head_id='x', jaw=np.zeros((10, 3), np.float32))
clip.resample(24)
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
