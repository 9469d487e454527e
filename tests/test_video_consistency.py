"""The real-video consistency measure (core.real_av.video_consistency, `video eval-real`): motion against motion.

Real inputs the repo makes: the default head rendered speaking flite speech while it turns, raises its brows and
blinks (spoken_head_fixtures), in a one-clip manifest; the take made with its video must follow it, the audio-only
take must not. The matching and normalisation rules are checked on signals with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.real_av.video_consistency import FEATURES, compare_features, match_blinks

TEXT = ("when the morning sun rose over the hills, the farmer walked out to his fields, looked at the sky and "
        "wondered whether the rain would come before the harvest was in")


def test_blinks_pair_one_to_one_within_two_frames():
    assert match_blinks([10, 50, 52, 90], [11, 51, 95]) == 2  # 10↔11, 50 or 52↔51 once; 90 is 5 frames from 95
    assert match_blinks([], [3]) == 0 and match_blinks([3], []) == 0
    assert match_blinks([0, 2], [1, 3]) == 2  # nearest first leaves each a partner


def test_each_face_is_normalised_by_its_own_median_and_compared_as_motion():
    rng = np.random.default_rng(0)
    real = {name: rng.normal(size=100) for name in FEATURES}
    take = {name: 5.0 + 0.5 * real[name] for name in FEATURES}  # offset and half the motion
    take["roll"] = -real["roll"]
    valid = np.ones(100, bool)
    valid[::7] = False
    row = compare_features(take, real, valid)
    assert row["yaw"]["r"] == pytest.approx(1.0) and row["yaw"]["amplitude"] == pytest.approx(0.5)
    assert row["roll"]["r"] == pytest.approx(-1.0) and row["roll"]["amplitude"] == pytest.approx(1.0)
    take["brow L"] = np.full(100, 0.3)  # a face that never moves: r 0, amplitude 0
    assert compare_features(take, real, valid)["brow L"] == {"r": 0.0, "amplitude": 0.0}


@pytest.fixture(scope="module")
def speaker_folder(tmp_path_factory):
    pytest.importorskip("bpy", reason="rendering needs the bpy wheel")
    pytest.importorskip("mediapipe", reason="the 'video' extra")
    pytest.importorskip("torch", reason="the shipped speech model needs torch")
    import soundfile
    from spoken_head_fixtures import render_spoken_head

    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, sha256_of

    folder = tmp_path_factory.mktemp("speaker")
    video, clip, utterance = render_spoken_head(TEXT, folder, upper_face=True)
    soundfile.write(folder / "head.wav", utterance.audio, utterance.sample_rate)
    entry = {"name": "rendered_speaker", "video": "head.mp4", "sha256": sha256_of(video), "speaker": "default_head",
             "split": "test", "source": "rendered by the test", "license": "CC0", "audio": "head.wav",
             "audio_sha256": sha256_of(folder / "head.wav"), "transcript": TEXT, "transcript_source": "given"}
    (folder / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": [entry]}))
    return folder, clip


@pytest.mark.blender
def test_the_take_made_with_the_video_follows_the_speaker_and_the_audio_only_take_does_not(speaker_folder, tmp_path,
                                                                                          capsys):
    from lattice_talk.cli import main

    folder, truth = speaker_folder
    out = tmp_path / "report.json"
    assert main(["video", "eval-real", "--real", str(folder), "--manifest", str(folder / "manifest.json"),
                 "--out", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert set(summary) == {"default", "audio only"} and "audio only" in capsys.readouterr().out
    video, audio = summary["default"], summary["audio only"]
    for name in ("yaw", "pitch"):  # the rendered head turns and nods; the take has the tracked pose
        assert video[name]["r"] > 0.9 and 0.7 < video[name]["amplitude"] < 1.3, (name, video[name])
    # The rendered turns are random; the audio-only take's are its own. (Its nods follow loudness by the same rule
    # the rendered head's did, so pitch is not a floor here.)
    assert abs(audio["yaw"]["r"]) < 0.5, audio["yaw"]
    blinks = video["blinks"]
    assert blinks["real"] >= 2 and blinks["recall"] >= 0.5 and blinks["precision"] >= 0.5, blinks
    assert audio["blinks"]["matched"] < blinks["matched"]


def test_a_video_model_folder_without_weights_is_one_clear_error(tmp_path):
    from lattice_talk.core.real_av.video_consistency import evaluate_video_consistency

    with pytest.raises(LatticeTalkError, match=f"{tmp_path}: no video_model.safetensors there"):
        evaluate_video_consistency([], tmp_path, {"mine": tmp_path})
