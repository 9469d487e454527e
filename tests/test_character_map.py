"""ARKit name matching, character maps and presets, Live Link Face CSV, head conversion — core only, no Blender."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from clip_fixtures import make_clip
from lattice_talk.core.arkit_names import ARKIT_NAMES, match_arkit_names, name_key
from lattice_talk.core.character_map import (JAW_OPEN_ANGLE, CharacterMap, CharacterMapError, arkit_units, auto_map,
                                             bone_rotation, list_presets, load_preset, save_preset)
from lattice_talk.core.clip import AnimationClip
from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.heads import create
from lattice_talk.core.livelink import BLEND_SHAPE_COUNT, LIVELINK_HEADER, timecode, write_livelink_csv, yaw_pitch_roll
from lattice_talk.core.lbs import rodrigues_np


def _split_side(name: str) -> tuple[str, str]:
    for side in ("Left", "Right"):
        if name.endswith(side) and name not in ("mouthLeft", "mouthRight", "jawLeft", "jawRight"):
            return name[: -len(side)], side
    return name, ""


def pascal_short_side(name: str) -> str:  # "EyeBlink_L"
    stem, side = _split_side(name)
    return stem[0].upper() + stem[1:] + (f"_{side[0]}" if side else "")


def snake_case(name: str) -> str:  # "eye_blink_left"
    return "_".join(w.lower() for w in __import__("re").findall(r"[A-Z]?[a-z]+", name))


def maya_prefixed(name: str) -> str:  # "blendShape1.eyeBlinkLeft"
    return f"blendShape1.{name}"


NAMING_STYLES = (pascal_short_side, snake_case, maya_prefixed)


@pytest.fixture(scope="module")
def head():
    return create("default")


def test_arkit_names_are_the_default_heads_units(head):
    assert len(ARKIT_NAMES) == 52 and set(ARKIT_NAMES) == set(head.expression_names)
    assert len({name_key(n) for n in ARKIT_NAMES}) == 52  # the key never merges two units


@pytest.mark.parametrize("style", NAMING_STYLES)
def test_every_unit_matches_under_common_naming_styles(style):
    names = ["Basis_ignored_by_caller", *(style(n) for n in reversed(ARKIT_NAMES))]
    match = match_arkit_names(names)
    assert match.unmatched == ()
    assert all(match.targets[n] == style(n) for n in ARKIT_NAMES)
    assert match.unused == ("Basis_ignored_by_caller",)


@pytest.mark.parametrize("spelling", ["eyeBlinkLeft", "EyeBlink_L", "eye_blink.L", "Left_EyeBlink", "L_eyeBlink",
                                      "ARKit:EyeBlinkLeft", "A01_Eye_Blink_Left", "EYE_BLINK_LEFT", "BS_eyeBlink_Left"])
def test_spellings_of_one_unit_share_a_key(spelling):
    assert name_key(spelling) == "eyeblinkleft"


def test_exact_name_beats_a_looser_spelling():
    match = match_arkit_names(["JawOpen", "jawOpen", "jaw_open"])
    assert match.targets["jawOpen"] == "jawOpen" and match.unused == ("JawOpen", "jaw_open")


def test_partial_rig_reports_exactly_the_missing_units():
    present = [n for n in ARKIT_NAMES if not n.startswith(("eyeLook", "tongue"))]
    mapping = auto_map([pascal_short_side(n) for n in present])
    assert mapping.unmatched() == [n for n in ARKIT_NAMES if n.startswith(("eyeLook", "tongue"))]
    assert len(mapping.unmatched()) == 9


def test_auto_map_prefers_the_jaw_open_key_and_finds_bones_by_name():
    with_key = auto_map(["jawOpen"], ["root", "DEF-jaw", "mixamorig:Neck", "mixamorig:Head"])
    assert (with_key.jaw_bone, with_key.head_bone) == ("", "mixamorig:Head")
    without_key = auto_map(["mouthSmileLeft"], ["root", "DEF-jaw", "neck_01"])
    assert (without_key.jaw_bone, without_key.head_bone) == ("DEF-jaw", "neck_01")


def test_preset_round_trips_and_lists(tmp_path):
    mapping = auto_map([snake_case(n) for n in ARKIT_NAMES[:40]], ["jaw", "head"])
    mapping.channel("mouthSmileLeft").scale = 0.5
    mapping.channel("cheekPuff").ignore = True
    path = save_preset(mapping, "My rig (v2)", tmp_path)
    assert path == tmp_path / "My rig (v2).json" and list_presets(tmp_path) == ["My rig (v2)"]
    assert load_preset("My rig (v2)", tmp_path) == mapping


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other"), "not a LatticeTalk character map"),
    (lambda d: d["channels"].update(notAUnit={}), "unknown units notAUnit"),
    (lambda d: d["channels"]["jawOpen"].update(scale="big"), "jawOpen.scale: .big. is not a number"),
    (lambda d: d["channels"]["jawOpen"].update(target=d["channels"]["mouthClose"]["target"]), "both drive shape key"),
])
def test_bad_presets_fail_with_one_clear_message(tmp_path, edit, message):
    data = auto_map(list(ARKIT_NAMES)).to_json()
    edit(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(CharacterMapError, match=message):
        load_preset("bad", tmp_path)


def test_preset_names_cannot_escape_the_folder(tmp_path):
    with pytest.raises(CharacterMapError, match="preset name"):
        save_preset(CharacterMap(), "../elsewhere", tmp_path)
    with pytest.raises(CharacterMapError, match="no preset named 'missing'"):
        load_preset("missing", tmp_path)


def test_map_checks_targets_against_the_character():
    mapping = auto_map(["jawOpen", "eyeBlinkLeft"])
    mapping.validate(["jawOpen", "eyeBlinkLeft"], [])
    with pytest.raises(CharacterMapError, match="no shape key 'eyeBlinkLeft'"):
        mapping.validate(["jawOpen"], [])
    mapping.head_bone = "Head"
    with pytest.raises(CharacterMapError, match="head bone 'Head' is not in the armature"):
        mapping.validate(["jawOpen", "eyeBlinkLeft"], ["root"])


def test_jaw_open_angle_matches_the_default_heads_sculpt(head):
    """The jaw rotation that moves the jaw like jawOpen = 1 (re-measured from the head file)."""
    zero = np.zeros((1, head.n_expression), np.float32)
    unit = zero.copy()
    unit[0, head.expression_names.index("jawOpen")] = 1.0
    rest = head.forward(expression=zero).vertices[0]
    target = head.forward(expression=unit).vertices[0] - rest
    moved = np.linalg.norm(target, axis=1) > 1e-3

    def error(angle):
        pose = np.zeros((1, 5, 3), np.float32)
        pose[0, 2, 0] = angle
        return np.linalg.norm(head.forward(expression=zero, pose=pose).vertices[0][moved] - rest[moved] - target[moved], axis=1).mean()

    angles = np.linspace(0.3, 0.5, 41)
    assert abs(angles[np.argmin([error(a) for a in angles])] - JAW_OPEN_ANGLE) <= 0.01


def test_arkit_units_fold_jaw_and_eyelids(head):
    clip = make_clip(head)
    units = arkit_units(clip, jaw_to_shape_key=True)
    jaw_open = ARKIT_NAMES.index("jawOpen")
    expected = np.clip(clip.expression[:, head.expression_names.index("jawOpen")] + clip.jaw[:, 0] / JAW_OPEN_ANGLE, 0, 1)
    assert np.allclose(units[:, jaw_open], expected)
    blink = ARKIT_NAMES.index("eyeBlinkLeft")
    assert np.allclose(units[:, blink], np.maximum(clip.expression[:, head.expression_names.index("eyeBlinkLeft")], clip.eyelids[:, 0]))
    flame = AnimationClip(fps=30, start_frame=1, head_id="flame", expression=np.zeros((3, 4), np.float32),
                          expression_names=("e0", "e1", "e2", "e3"))
    with pytest.raises(CharacterMapError, match="convert it to the default head"):
        arkit_units(flame, jaw_to_shape_key=True)


def test_bone_rotation_in_any_rest_orientation():
    """A world rotation keyed on a bone gives the same world rotation, whatever the bone's rest orientation."""
    rng = np.random.default_rng(0)
    rotvec = rng.normal(0, 0.3, (6, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rest = q * np.sign(np.linalg.det(q)) * 2.0  # any orientation, with the armature's scale
    local = bone_rotation(rotvec, rest, "QUATERNION")
    world_rest = rest / 2.0
    from lattice_talk.core.character_map import HEAD_TO_WORLD
    from lattice_talk.core.rotations import quat_to_axis_angle

    posed = world_rest @ rodrigues_np(quat_to_axis_angle(local.astype(np.float64))) @ world_rest.T
    assert np.allclose(posed, HEAD_TO_WORLD @ rodrigues_np(rotvec) @ HEAD_TO_WORLD.T, atol=1e-5)
    with pytest.raises(CharacterMapError, match="rotation mode ZXY"):
        bone_rotation(rotvec, rest, "ZXY", "jaw")


def test_livelink_csv_has_unreals_header_and_one_row_per_frame(head, tmp_path):
    clip = make_clip(head, seconds=2.0, fps=60.0)
    path = write_livelink_csv(clip, tmp_path / "take.csv")
    rows = list(csv.reader(path.open()))
    assert tuple(rows[0]) == LIVELINK_HEADER and len(rows[0]) == 2 + 61
    assert rows[0][:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert rows[0][-9:] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                            "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
    assert len(rows) - 1 == clip.n_frames == 120
    assert rows[1][:2] == ["00:00:00:00.000", str(BLEND_SHAPE_COUNT)] and rows[61][0] == "00:00:01:00.000"
    column = rows[0].index("MouthSmileLeft")
    assert np.allclose([float(r[column]) for r in rows[1:]], clip.expression[:, head.expression_names.index("mouthSmileLeft")], atol=1e-5)
    with pytest.raises(LatticeTalkError, match="name ending in .csv"):
        write_livelink_csv(clip, tmp_path / "take.txt")


def test_timecode_and_yaw_pitch_roll():
    assert timecode(61, 30.0) == "00:00:02:01.000" and timecode(3600 * 24, 24.0) == "01:00:00:00.000"
    rotvec = np.array([[0.0, 0.3, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, -0.1]])
    assert np.allclose(yaw_pitch_roll(rotvec), [[0.3, 0, 0], [0, 0.2, 0], [0, 0, -0.1]], atol=1e-12)


def test_default_head_clip_converts_to_another_head_and_back(head):
    """Default → default through the motion space keeps the mouth's units; rigid channels and provenance carry over."""
    from lattice_talk.core.head_convert import clip_for_head, convert_clip

    clip = make_clip(head, seconds=0.5)
    clip.expression[:, head.expression_names.index("jawOpen")] = 0.0  # the bone carries the jaw, as in real takes
    out = convert_clip(clip, head, head)
    smile = head.expression_names.index("mouthSmileLeft")
    error = np.abs(out.expression[:, smile] - clip.expression[:, smile])
    assert np.median(error) < 1e-4 and error.max() < 0.1  # exact but where the lip-contact term seals the lips
    assert np.abs(out.jaw[:, 0] - clip.jaw[:, 0]).max() < 0.01
    assert np.array_equal(out.global_rotation, clip.global_rotation) and out.provenance["made_by"] == "tests"
    assert out.provenance["converted_from"] == head.head_id and "retarget" in out.provenance
    assert clip_for_head(clip, head.head_id, lambda: pytest.fail("no load needed")) is clip
    other = AnimationClip(fps=30, start_frame=1, head_id="flame:x", jaw=np.zeros((2, 3), np.float32))
    with pytest.raises(LatticeTalkError, match="lattice_talk convert"):
        clip_for_head(other, head.head_id, lambda: head)
