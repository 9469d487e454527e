"""Articulatory targets and the synthetic corpus: lips seal on every p/b/m, rest closed, splits disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from lattice_talk.cli import main
from lattice_talk.core import lip_geometry, metrics
from lattice_talk.core.data.articulation import articulate
from lattice_talk.core.data.corpus import Corpus, synth_corpus
from lattice_talk.core.phonemes import PhonemeEvent
from lattice_talk.core.heads import create
from lattice_talk.core.landmark_rig import LandmarkRig
from lattice_talk.core.motion_file import MotionTrack


@pytest.fixture(scope="module")
def rig_and_names():
    head = create("default")
    return LandmarkRig(head), head.expression_names


def events(spec):
    out, t = [], 0.0
    for phoneme, duration in spec:
        out.append(PhonemeEvent(phoneme, t, t + duration))
        t += duration
    return out


def track_for(rig, names, phonemes, audio, seed=0):
    motion = articulate(phonemes, names, 30.0, audio, 16000, seed=seed)
    pose = motion.pose()
    pose[:, 0] = 0.0
    neutral = rig.points(np.zeros((1, len(names)), np.float32), np.zeros((1, 5, 3), np.float32))[0]
    return motion, MotionTrack(fps=30.0, points=rig.points(motion.units, pose), point_ids=rig.mediapipe_index,
                               neutral=neutral, phonemes=phonemes)


def test_bilabials_seal_and_vowels_open(rig_and_names):
    rig, names = rig_and_names
    phonemes = events([("sil", 0.4), ("b", 0.06), ("aa", 0.14), ("p", 0.05), ("iy", 0.1), ("m", 0.04), ("uw", 0.15),
                       ("f", 0.08), ("ao", 0.12), ("sil", 0.5)])
    audio = np.random.default_rng(0).normal(0, 0.05, int(1.64 * 16000)).astype(np.float32)
    motion, track = track_for(rig, names, phonemes, audio)
    closure = metrics.bilabial_closure_rate(track)
    assert closure.rate == 1.0 and closure.count == 3
    gap = lip_geometry.lip_gap(track)
    frame = lambda t: int(round(t * 30))  # noqa: E731
    assert gap[frame(0.2)] < 1.0 and gap[frame(1.5)] < 1.0  # the mouth rests closed in pauses
    assert gap[frame(0.53)] > 5.0  # open on "aa"
    assert motion.jaw[frame(0.53)] > 0.08 and motion.jaw[frame(0.2)] < 0.01  # ~5° on a short "aa", shut at rest
    # Rounding: the mouth is narrower on "uw" than on "iy".
    width = np.linalg.norm(track.select([61])[:, 0] - track.select([291])[:, 0], axis=1)
    assert width[frame(0.865)] < width[frame(0.70)]


def test_articulation_is_deterministic_and_bounded(rig_and_names):
    _, names = rig_and_names
    phonemes = events([("sil", 0.2), ("m", 0.07), ("ay", 0.2), ("sil", 1.0)])
    audio = np.random.default_rng(1).normal(0, 0.05, int(1.47 * 16000)).astype(np.float32)
    a = articulate(phonemes, names, 30.0, audio, 16000, seed=4)
    b = articulate(phonemes, names, 30.0, audio, 16000, seed=4)
    assert np.array_equal(a.units, b.units) and np.array_equal(a.head_rotation, b.head_rotation)
    assert a.units.min() >= 0.0 and a.units.max() <= 1.0
    assert np.abs(a.head_rotation).max() < 0.15  # small head motion (< 9°)


def test_small_corpus_is_split_by_voice_and_sentence(tmp_path, rig_and_names):
    rig, _ = rig_and_names
    summary = synth_corpus(tmp_path / "c", hours=0.01, seed=3, workers=2)
    assert summary["shared_voices"] == [] and summary["shared_sentences"] == 0
    assert summary["hours"]["train"] > 0 and sum(summary["utterances"].values()) >= 5
    corpus = Corpus(tmp_path / "c")
    utterances = list(corpus.utterances("train"))
    assert len(utterances) == summary["utterances"]["train"]
    missed = total = 0
    for utterance in utterances:
        track = utterance.motion(rig)
        assert track.n_frames == len(utterance.jaw) and abs(track.n_frames / 30.0 - len(utterance.audio) / 16000) < 0.1
        result = metrics.bilabial_closure_rate(track)
        missed += len(result.missed)
        total += result.count
    assert total > 0 and missed == 0  # every p/b/m of every utterance seals
    again = synth_corpus(tmp_path / "d", hours=0.01, seed=3, workers=1)
    assert again["utterances"] == summary["utterances"]
    first, second = next(Corpus(tmp_path / "d").utterances("train")), utterances[0]
    assert first.id == second.id and np.array_equal(first.units, second.units) and np.array_equal(first.audio, second.audio)


def test_data_plot_command(tmp_path):
    assert main(["data", "plot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "visemes.png").stat().st_size > 10000 and (tmp_path / "sentence.png").stat().st_size > 10000


def test_recombined_training_text_uses_training_words_and_leaves_heldout_alone():
    import itertools

    from lattice_talk.core.data.corpus import plan_jobs
    from lattice_talk.core.data.sentences import split_sentences

    mixed = list(itertools.islice(plan_jobs(3, recombine_share=1.0), 300))
    plain = list(itertools.islice(plan_jobs(3, recombine_share=0.0), 300))
    assert [j for j in mixed if j.split == "heldout"] == [j for j in plain if j.split == "heldout"]
    train_sentences, heldout_sentences = split_sentences(3)
    vocabulary = {w.strip(".,;:!?\"'").lower() for s in train_sentences for w in s.split()}
    recombined = [j.text for j in mixed if j.split == "train"]
    assert recombined and not set(recombined) & (set(train_sentences) | set(heldout_sentences))
    for text in recombined:
        words = [w.strip(".").lower() for w in text.split()]
        assert 5 <= len(words) <= 12 and set(words) <= vocabulary
    assert [j.text for j in plain if j.split == "train"][0] in train_sentences


def test_skip_extends_a_corpus_with_new_utterances(tmp_path):
    from lattice_talk.core.data.corpus import Corpus, synth_corpus

    summary = synth_corpus(tmp_path / "more", hours=0.002, seed=3, workers=1, skip=40)
    assert summary["skipped_utterances"] == 40
    ids = [u.id for split in ("train", "heldout") for u in Corpus(tmp_path / "more").utterances(split)]
    assert ids and all(int(i.split("-")[1]) >= 40 for i in ids)


def test_frame_pitch_finds_the_voice_and_is_the_same_in_blocks(monkeypatch):
    """Pitch per frame on long takes goes block by block (bounded memory): same answer as one block."""
    from lattice_talk.core import prosody

    t = np.arange(16000 * 3) / 16000
    voiced = t < 1.5
    tone = (np.sin(2 * np.pi * 150.0 * t) * voiced).astype(np.float32)
    whole = prosody.frame_pitch(tone, 16000, 30.0, 90)
    assert np.all(np.abs(whole[5:40] - 150.0) < 5.0) and not whole[50:].any()
    monkeypatch.setattr(prosody, "PITCH_BLOCK", 7)
    assert np.array_equal(prosody.frame_pitch(tone, 16000, 30.0, 90), whole)


def test_data_mix_links_training_shards_as_often_as_asked_and_keeps_test_splits_out(tmp_path):
    from lattice_talk.cli import main
    from lattice_talk.core.data.corpus import Corpus, synth_corpus

    synth_corpus(tmp_path / "a", hours=0.004, seed=3, workers=1)
    synth_corpus(tmp_path / "b", hours=0.01, seed=3, workers=1)
    a, b = Corpus(tmp_path / "a"), Corpus(tmp_path / "b")
    assert main(["data", "mix", "--train-only", f"{tmp_path / 'a'}*2", "--corpus", str(tmp_path / "b"),
                 "--out", str(tmp_path / "mix")]) == 0
    mix = Corpus(tmp_path / "mix")
    train_ids = [u.id for u in mix.utterances("train")]
    a_ids, b_ids = [u.id for u in a.utterances("train")], [u.id for u in b.utterances("train")]
    assert sorted(train_ids) == sorted(2 * a_ids + b_ids)
    # a's held-out split (a test set) stays out of early stopping; b's joins it.
    assert [u.id for u in mix.utterances("heldout")] == [u.id for u in b.utterances("heldout")]
    assert all(p.is_symlink() for p in mix.root.glob("*.npz"))
    # Mixing again replaces the links; a folder that is not a mix is refused untouched.
    assert main(["data", "mix", "--corpus", str(tmp_path / "b"), "--out", str(tmp_path / "mix")]) == 0
    assert sorted(u.id for u in Corpus(tmp_path / "mix").utterances("train")) == sorted(b_ids)
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert main(["data", "mix", "--corpus", str(tmp_path / "b"), "--out", str(tmp_path / "a")]) == 2
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
