"""The p/b/m detector (core.speech.bilabial): trained on speech with aligned phones, it seals the lips where it
hears a bilabial, inside a speech model folder, with no transcript.

Real inputs the tests make: sentences spoken by flite's slt voice (built from a real speaker's recordings), aligned
by PocketSphinx as ``data voices`` aligns real read speech, and a tiny random-init decoder saved like trained
weights (so every seal in the take comes from the detector, not the decoder)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.errors import LatticeTalkError

sys.path.insert(0, str(Path(__file__).parent))

TRAINING_LINES = ("bob paid my mum a big bonus", "a bumpy bus ride by the bay", "please put the maple pie back",
                  "the cat sat on the red chair", "seven green ducks rode a sled", "my brother made a map of boston")
HELDOUT_LINES = ("ben bought a pen for mary", "the old dog ran to the door")


def test_each_run_over_the_threshold_is_one_detection_at_its_most_certain_frame():
    from lattice_talk.core.speech.bilabial import detected_bilabials

    assert detected_bilabials(np.array([0.8, 0.6, 0.7, 0.9, 0.2, 0.5, 0.49, 0.9]), threshold=0.5) == [3, 5, 7]
    assert detected_bilabials(np.array([0.9, 0.1]), 0.5) == [0]
    assert detected_bilabials(np.zeros(5), 0.5) == []


def test_detections_are_sealed_only_where_the_jaw_is_nearly_shut():
    from lattice_talk.core.heads import create
    from lattice_talk.core.mouth import SEAL_JAW
    from lattice_talk.core.speech.bilabial import JAW_GATE, seal_detected_bilabials

    names = create("default").expression_names
    units, jaw = np.full((12, len(names)), 0.3, np.float32), np.full(12, 0.3, np.float32)
    jaw[2:5] = 0.5 * JAW_GATE  # nearly shut around frame 3; wide open around frame 8
    probability = np.zeros(12, np.float32)
    probability[3], probability[8] = 0.9, 0.9
    _, sealed_jaw, count = seal_detected_bilabials(units, jaw, names, probability, fps=10.0, threshold=0.5)
    assert count == 1 and sealed_jaw[3] == SEAL_JAW and np.array_equal(sealed_jaw[6:], jaw[6:])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny speech model folder with a detector trained on six aligned flite sentences (held out: two more)."""
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    pytest.importorskip("torch")
    import soundfile

    from pipeline_fixtures import save_tiny_decoder

    from lattice_talk.cli import main
    from lattice_talk.core.data import tts

    root = tmp_path_factory.mktemp("detector")
    (root / "model").mkdir()
    save_tiny_decoder(root / "model")
    for split, lines in (("train", TRAINING_LINES), ("heldout", HELDOUT_LINES)):
        rows = []
        for k, text in enumerate(lines):
            utterance = tts.synthesize(text, "flite", "slt")
            soundfile.write(root / f"{split}{k}.wav", utterance.audio, utterance.sample_rate)
            rows.append(f"{split}{k}.wav\t{text}\tslt")
        (root / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        assert main(["data", "voices", "--lines", str(root / f"{split}.tsv"), "--tag", split, "--out",
                     str(root / f"v_{split}"), "--teacher", str(root / "model"),
                     "--heldout-share", "1.0" if split == "heldout" else "0.0"]) == 0
    # --jaw-gate 0.45 (the jaw's range): the random decoder's jaw never nearly shuts, so every detection seals
    # (the gate's own test is above)
    code = main(["speech", "train-bilabial", "--model", str(root / "model"), "--corpus", str(root / "v_train"),
                 str(root / "v_heldout"), "--out", str(root / "with_detector"), "--epochs", "12",
                 "--steps-per-epoch", "25", "--jaw-gate", "0.45", "--quiet"])
    assert code == 0
    return root


def test_the_detector_learns_where_the_aligned_bilabials_are(trained):
    from lattice_talk.core.speech.bilabial import load_detector
    from lattice_talk.core.speech.bilabial_train import score_events
    from lattice_talk.core.speech.features import decoder_features
    from lattice_talk.core.speech.model import decoder_config
    from lattice_talk.core.speech.train import load_examples

    folder = trained / "with_detector"
    detector, config = load_detector(folder)  # fp16 on disk, as the pipeline reads it
    examples = load_examples(trained / "v_train", "train", decoder_features(decoder_config(folder), folder))
    scores = score_events(detector, examples)["0.5"]
    assert scores["bilabials"] >= 25  # b b p m m m b b, b b b b, p p m p b, ..., m b m p b
    assert scores["found"] >= 0.8 * scores["bilabials"] and scores["stray"] <= 0.3 * scores["events"]
    assert config["threshold"] == 0.5 and config["heldout_events"]["0.5"]["bilabials"] >= 4
    assert (trained / "model" / "decoder.safetensors").read_bytes() == (folder / "decoder.safetensors").read_bytes()
    assert not (trained / "model" / "bilabial.json").exists()  # the source model folder is left as it was


def test_the_pipeline_seals_the_lips_where_the_detector_hears_a_bilabial(trained):
    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.real_av.evaluate import HeadLips
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    def take(model):
        request = GenerateRequest(audio_path=trained / "train0.wav", head=create("default"),
                                  settings=GenerateSettings(fps=30.0))
        return run_sync(SpeechPipeline(model), request)

    with_detector, without = take(trained / "with_detector"), take(trained / "model")
    report = with_detector.provenance["bilabial_detector"]
    assert report["threshold"] == 0.5 and report["jaw_gate"] == 0.45 and report["sealed"] >= 4  # "bob paid my mum a
    # big bonus": 8 p/b/m
    assert report["sha256"] == hashlib.sha256((trained / "with_detector" / "bilabial.safetensors").read_bytes()).hexdigest()
    assert "bilabial_detector" not in without.provenance
    head_lips = HeadLips()
    closed_with, closed_without = ((head_lips(clip)[1] < 1.0).sum() for clip in (with_detector, without))
    assert closed_with >= report["sealed"] and closed_without == 0  # the random decoder alone never shuts the lips


def test_a_damaged_detector_is_one_error_naming_its_file(trained, tmp_path):
    import shutil

    from lattice_talk.core.speech.bilabial import load_detector

    folder = tmp_path / "model"
    shutil.copytree(trained / "with_detector", folder)
    config = json.loads((folder / "bilabial.json").read_text())
    (folder / "bilabial.json").write_text(json.dumps({**config, "model": {**config["model"], "hidden": 10 ** 9}}))
    with pytest.raises(LatticeTalkError, match=r"bilabial\.json: model\.hidden"):
        load_detector(folder)
    (folder / "bilabial.json").write_text(json.dumps(config))
    (folder / "bilabial.safetensors").write_bytes(b"not weights")
    with pytest.raises(LatticeTalkError, match=r"bilabial\.safetensors: the weights are damaged"):
        load_detector(folder)


def test_train_bilabial_refuses_a_corpus_without_held_out_lines_and_a_full_out_folder(trained, tmp_path, capsys):
    from lattice_talk.cli import main

    code = main(["speech", "train-bilabial", "--model", str(trained / "model"), "--corpus", str(trained / "v_train"),
                 "--out", str(tmp_path / "new"), "--epochs", "1", "--quiet"])
    assert code != 0 and "no 'heldout' lines" in capsys.readouterr().err and not (tmp_path / "new").exists()
    code = main(["speech", "train-bilabial", "--model", str(trained / "model"), "--corpus", str(trained / "v_train"),
                 str(trained / "v_heldout"), "--out", str(trained / "with_detector"), "--epochs", "1", "--quiet"])
    assert code != 0 and "not empty" in capsys.readouterr().err


@pytest.fixture(scope="module")
def phonetic(trained):
    """The same tiny model with a detector trained on a tiny random Whisper encoder's states instead."""
    from test_phonetic_encoder import tiny_whisper

    from lattice_talk.cli import main

    tiny_whisper(trained / "whisper.bin")
    assert main(["speech", "import-whisper", "--ct2", str(trained / "whisper.bin"), "--layers", "2", "--out",
                 str(trained / "whisper")]) == 0
    assert main(["speech", "train-bilabial", "--model", str(trained / "model"), "--corpus", str(trained / "v_train"),
                 str(trained / "v_heldout"), "--out", str(trained / "phonetic"), "--phonetic-encoder",
                 str(trained / "whisper"), "--epochs", "12", "--steps-per-epoch", "25", "--jaw-gate", "0.45",
                 "--quiet"]) == 0
    return trained / "phonetic"


def test_a_detector_on_the_phonetic_encoder_reads_its_own_copy_of_the_encoder(phonetic, trained):
    from lattice_talk.core.speech.bilabial import folder_detector
    from lattice_talk.core.speech.bilabial_train import score_events
    from lattice_talk.core.speech.train import load_examples

    config = json.loads((phonetic / "bilabial.json").read_text())
    assert config["features"] == "whisper_encoder_states" and config["encoder"] == "phonetic_encoder"
    assert (phonetic / "phonetic_encoder" / "model.safetensors").read_bytes() == \
        (trained / "whisper" / "model.safetensors").read_bytes()
    found = folder_detector(phonetic)
    # The saved detector has the training's standardisation folded into its first layer: it reads the raw states.
    examples = load_examples(trained / "v_train", "train", found.features)
    scores = score_events(found.detector, examples)["0.5"]
    assert scores["found"] >= 0.8 * scores["bilabials"] and scores["stray"] <= 0.3 * scores["events"]


def test_the_pipeline_runs_the_phonetic_encoder_for_its_detector(phonetic, trained, tmp_path):
    import shutil

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    request = GenerateRequest(audio_path=trained / "train0.wav", head=create("default"), settings=GenerateSettings(fps=30.0))
    report = run_sync(SpeechPipeline(phonetic), request).provenance["bilabial_detector"]
    assert report["encoder"] == "phonetic_encoder" and report["sealed"] >= 4  # "bob paid my mum a big bonus"
    assert report["encoder_sha256"] == hashlib.sha256((phonetic / "phonetic_encoder" / "model.safetensors").read_bytes()).hexdigest()
    broken = tmp_path / "model"
    shutil.copytree(phonetic, broken)
    shutil.rmtree(broken / "phonetic_encoder")
    with pytest.raises(LatticeTalkError, match=r"bilabial\.json: the head reads the phonetic encoder in folder "
                                               r"'phonetic_encoder', which this model folder does not have"):
        SpeechPipeline(broken).prepare()


@pytest.mark.parametrize("name", ["/tmp", "C:x", "../phonetic", "a/b", "..", "", 7])
def test_a_detector_config_cannot_point_its_encoder_outside_the_model_folder(phonetic, tmp_path, name):
    import shutil

    from lattice_talk.core.speech.bilabial import folder_detector

    folder = tmp_path / "model"
    shutil.copytree(phonetic, folder)
    config = json.loads((folder / "bilabial.json").read_text())
    (folder / "bilabial.json").write_text(json.dumps({**config, "encoder": name}))
    with pytest.raises(LatticeTalkError, match=r"bilabial\.json: the head reads the phonetic encoder in folder"):
        folder_detector(folder)
