"""The mouth-opening head (core.speech.opening): trained on real talking faces over the phonetic encoder's states, it
gives the mouth opening the A/V offset is estimated from.

Real inputs the tests make: the two GRID s1 clips the repository ships (``data real`` tracks their faces and aligns
their words), a tiny random Whisper encoder imported as the phonetic encoder, and a tiny random-init decoder saved
like trained weights."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.errors import LatticeTalkError

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A real talking-face corpus (one training clip, one held out) and a tiny speech model with a p/b/m detector on a
    tiny random Whisper encoder, then the same model with a mouth-opening head trained on the corpus."""
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    pytest.importorskip("torch")
    from pipeline_fixtures import save_tiny_decoder
    from real_media import GRID_DIR
    from test_phonetic_encoder import tiny_whisper

    from lattice_talk.cli import main

    root = tmp_path_factory.mktemp("opening")
    assert main(["data", "real", "--videos", str(GRID_DIR), "--alignments", str(GRID_DIR), "--speaker", "grid_s1",
                 "--out", str(root / "real"), "--heldout-share", "0.5"]) == 0
    (root / "model").mkdir()
    save_tiny_decoder(root / "model")
    tiny_whisper(root / "whisper.bin")
    assert main(["speech", "import-whisper", "--ct2", str(root / "whisper.bin"), "--layers", "2", "--out",
                 str(root / "whisper")]) == 0
    assert main(["speech", "train-bilabial", "--model", str(root / "model"), "--corpus", str(root / "real"), "--out",
                 str(root / "detector"), "--phonetic-encoder", str(root / "whisper"), "--epochs", "1",
                 "--steps-per-epoch", "2", "--quiet"]) == 0
    assert main(["speech", "train-opening", "--model", str(root / "detector"), "--corpus", str(root / "real"), "--out",
                 str(root / "opening"), "--epochs", "6", "--steps-per-epoch", "25", "--quiet"]) == 0
    return root


def test_the_correlation_loss_reads_the_shape_in_time_not_the_scale():
    import torch

    from lattice_talk.core.speech.opening_train import correlation_loss

    class Echo(torch.nn.Module):  # a "head" that returns a fixed output, to see the loss alone
        def __init__(self, output):
            super().__init__()
            self.output = output

        def forward(self, features, n_frames):
            return self.output

    target = torch.sin(torch.linspace(0, 6, 40))[None].repeat(2, 1)
    target[1] = 0.3  # a window of silence: no timing in it, left out
    trust = torch.ones(2, 40)
    batch = (torch.zeros(2, 67, 4), None, None, None, target, None, trust)
    assert float(correlation_loss(Echo(3.0 * target + 1.0), batch)) == pytest.approx(0.0, abs=1e-4)
    assert float(correlation_loss(Echo(-target), batch)) == pytest.approx(2.0, abs=1e-4)
    untrusted = trust.clone()
    untrusted[0, 20:] = 0.0  # only the trusted half counts: an output that matches it there is perfect
    wrong_after = torch.cat([target[:, :20], -target[:, 20:]], 1)
    assert float(correlation_loss(Echo(wrong_after), batch[:-1] + (untrusted,))) == pytest.approx(0.0, abs=1e-4)


def test_the_jaw_follows_the_heads_timing_as_far_as_its_weight_and_keeps_the_decoders_spread():
    from lattice_talk.core.heads import create
    from lattice_talk.core.motion.fusion import predicted_mouth_opening
    from lattice_talk.core.speech.decoder import JAW_MAX
    from lattice_talk.core.speech.opening import guide_jaw

    names = create("default").expression_names
    t = np.arange(120) / 30.0
    units = np.zeros((120, len(names)), np.float32)
    jaw = (0.15 + 0.1 * np.sin(2 * np.pi * 2.0 * t)).astype(np.float32)  # the decoder opens 2× a second
    head = 7.0 * np.sin(2 * np.pi * 2.0 * (t - 0.1)) - 3.0  # the head: the same rhythm 0.1 s later, its own scale
    own = predicted_mouth_opening(units, names, jaw)
    assert np.array_equal(guide_jaw(units, jaw, names, head, 0.0), jaw)
    followed = predicted_mouth_opening(units, names, guide_jaw(units, jaw, names, head, 1.0))
    assert np.corrcoef(followed, head)[0, 1] > 0.999  # when: the head's
    assert followed.std() == pytest.approx(own.std(), rel=0.05) and followed.mean() == pytest.approx(own.mean(), rel=0.05)
    half = predicted_mouth_opening(units, names, guide_jaw(units, jaw, names, head, 0.5))
    assert np.allclose(half, 0.5 * (own + followed), atol=2e-3)
    wide = guide_jaw(units, np.full(120, 0.44, np.float32) + 0.01 * np.sin(t).astype(np.float32), names, 50 * head, 1.0)
    assert wide.min() >= 0.0 and wide.max() <= JAW_MAX  # never past the jaw's range
    lost = head.copy()
    lost[5] = np.nan  # a head that failed somewhere: the decoder's jaw, untouched
    assert np.array_equal(guide_jaw(units, jaw, names, lost, 1.0), jaw)
    with pytest.raises(ValueError, match="120"):
        guide_jaw(units, jaw, names, head[:100], 1.0)


def test_the_head_learns_the_real_mouth_opening_and_reads_the_models_own_encoder(folders):
    from lattice_talk.core.motion.fusion import predicted_mouth_opening
    from lattice_talk.core.speech.opening import folder_opening_head
    from lattice_talk.core.speech.train import load_examples

    model = folders / "opening"
    config = json.loads((model / "opening.json").read_text())
    assert config["features"] == "whisper_encoder_states" and config["encoder"] == "phonetic_encoder"
    assert config["corpora"] == [str(folders / "real")] and 0.0 < config["train_hours"] < 0.01
    found = folder_opening_head(model)
    (example,) = load_examples(folders / "real", "train", found.features)
    target = predicted_mouth_opening(example.units, tuple(example.utterance.unit_names), example.jaw)
    opening = found.opening(found.features(example.utterance.audio), len(target))
    trusted = example.weight > 0
    # The saved head has the training's standardisation folded into its first layer: it reads the raw states.
    assert np.corrcoef(opening[trusted], target[trusted])[0, 1] > 0.8


def test_the_take_estimates_its_video_offset_from_the_head(folders):
    import hashlib

    from real_media import TALKING_HEAD

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    pipeline = SpeechPipeline(folders / "opening")
    request = GenerateRequest(audio_path=TALKING_HEAD, head=create("default"), video_path=TALKING_HEAD,
                              settings=GenerateSettings(fps=25.0))
    clip = run_sync(pipeline, request)
    assert clip.provenance["video"]["offset_evidence"] == "mouth-opening head"
    digest = hashlib.sha256((folders / "opening" / "opening.safetensors").read_bytes()).hexdigest()
    encoder = hashlib.sha256((folders / "opening" / "phonetic_encoder" / "model.safetensors").read_bytes()).hexdigest()
    assert clip.provenance["mouth_opening_head"] == {"sha256": digest, "encoder": "phonetic_encoder",
                                                     "encoder_sha256": encoder, "jaw_weight": 0.0}
    opening = pipeline.mouth_opening(TALKING_HEAD, 25.0)
    assert opening.shape == (len(clip.expression),) and np.isfinite(opening).all() and opening.std() > 0
    assert clip.provenance["mouth_opening_head"]["jaw_weight"] == 0.0  # trained: evidence only, until chosen
    guided = folders / "guided"
    if not guided.exists():
        shutil.copytree(folders / "opening", guided)
        config = json.loads((guided / "opening.json").read_text())
        (guided / "opening.json").write_text(json.dumps({**config, "jaw_weight": 1.0}))
    moved = run_sync(SpeechPipeline(guided), GenerateRequest(audio_path=TALKING_HEAD, head=create("default"),
                                                             settings=GenerateSettings(fps=25.0)))
    assert moved.provenance["mouth_opening_head"]["jaw_weight"] == 1.0
    assert not np.allclose(moved.jaw, run_sync(pipeline, GenerateRequest(
        audio_path=TALKING_HEAD, head=create("default"), settings=GenerateSettings(fps=25.0))).jaw, atol=1e-3)
    without = run_sync(SpeechPipeline(folders / "detector"), request)  # no head: the decoder's mouth, as before
    assert without.provenance["video"]["offset_evidence"] == "decoder mouth"
    assert "mouth_opening_head" not in without.provenance
    assert SpeechPipeline(folders / "detector").mouth_opening(TALKING_HEAD, 25.0) is None


def test_a_damaged_head_is_one_error_naming_its_file(folders, tmp_path):
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    broken = tmp_path / "model"
    shutil.copytree(folders / "opening", broken)
    config = json.loads((broken / "opening.json").read_text())
    (broken / "opening.json").write_text(json.dumps({**config, "features": "decoder"}))
    with pytest.raises(LatticeTalkError, match=r"opening\.json: the head must read \"features\": "
                                               r"'whisper_encoder_states'; .*train-opening"):
        SpeechPipeline(broken).prepare()
    (broken / "opening.json").write_text(json.dumps({**config, "encoder": "../detector"}))
    with pytest.raises(LatticeTalkError, match=r"opening\.json: the head reads the phonetic encoder in folder "
                                               r"'\.\./detector', which this model folder does not have"):
        SpeechPipeline(broken).prepare()
    (broken / "opening.json").write_text(json.dumps({**config, "jaw_weight": 2.0}))
    with pytest.raises(LatticeTalkError, match=r"opening\.json: jaw_weight"):
        SpeechPipeline(broken).prepare()
    (broken / "opening.json").write_text(json.dumps(config))
    (broken / "opening.safetensors").write_bytes(b"not weights")
    with pytest.raises(LatticeTalkError, match=r"opening\.safetensors"):
        SpeechPipeline(broken).prepare()


def test_train_opening_refuses_a_model_without_the_phonetic_encoder_and_a_full_out_folder(folders, tmp_path, capsys):
    from lattice_talk.cli import main

    args = ["speech", "train-opening", "--corpus", str(folders / "real"), "--epochs", "1", "--steps-per-epoch", "1",
            "--quiet"]
    assert main(args + ["--model", str(folders / "model"), "--out", str(tmp_path / "a")]) != 0
    assert "reads the model's phonetic encoder, and this model has none" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before anything was written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("the user's")
    assert main(args + ["--model", str(folders / "detector"), "--out", str(tmp_path / "full")]) != 0
    assert "the folder is not empty" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "the user's"
    assert main(args[:4] + ["--epochs", "0", "--quiet", "--model", str(folders / "detector"), "--out",
                            str(tmp_path / "b")]) != 0
    assert "at least one epoch of at least one step" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_a_teacher_whose_head_guides_the_jaw_teaches_the_guided_jaw(folders, tmp_path):
    """data voices' teacher (voice_shards.TeacherModel) makes the motion generate makes: with a jaw_weight in its
    opening.json, the jaw its head guides; without one, the decoder's own."""
    from lattice_talk.core.real_av.voice_shards import TeacherModel
    from lattice_talk.core.speech.opening import guide_jaw
    from lattice_talk.core.speech.train import load_examples

    guided = tmp_path / "guided"
    shutil.copytree(folders / "opening", guided)
    config = json.loads((guided / "opening.json").read_text())
    (guided / "opening.json").write_text(json.dumps({**config, "jaw_weight": 1.0}))
    plain, teacher = TeacherModel(folders / "opening"), TeacherModel(guided)
    assert plain.opening is None and teacher.opening.jaw_weight == 1.0
    (example,) = load_examples(folders / "real", "train")
    audio, n = example.utterance.audio, len(example.jaw)
    units, jaw = plain(audio, n)
    guided_units, guided_jaw = teacher(audio, n)
    assert np.array_equal(guided_units, units) and not np.allclose(guided_jaw, jaw)
    opening = teacher.opening.opening(teacher.opening.features(audio), n)
    assert np.array_equal(guided_jaw, guide_jaw(units, jaw, plain.unit_names, opening, 1.0))
    # data voices with it records the guidance in the corpus it writes.
    from real_media import GRID_DIR

    from lattice_talk.core.real_av.voice_shards import build_voice_corpus, read_line_table

    lines = read_line_table(GRID_DIR / "voices.tsv")[:1]
    meta = build_voice_corpus(lines, guided, tmp_path / "corpus", "g", heldout_share=0.0)
    assert meta["teacher_jaw_weight"] == 1.0 and meta["teacher_opening_sha256"] == teacher.opening.sha256
    assert "teacher_jaw_weight" not in build_voice_corpus(lines, folders / "opening", tmp_path / "plain", "p",
                                                          heldout_share=0.0)
