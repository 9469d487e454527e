"""Real speech as the measure and the training signal (core.real_av, core.speech.alignment).

Real inputs the tests make: English speech from flite's slt voice, built from recordings of a real speaker
(its own phoneme timing is the truth for the aligner; espeak-ng's formant voices are too unlike real speech
for a real-speech recogniser), and a talking-head video of the default head rendered by Blender from that speech's articulation
(whose posed lips are the truth for the tracked "real" lips). Scoring is checked on signals with a known lag
and known closures."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.phonemes import BILABIALS, PhonemeEvent
from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.real_av.real_lips import RealLips, loudness_envelope
from lattice_talk.core.lip_geometry import opening_ratio
from lattice_talk.core.real_av.score import Prediction, closure_scores, score_clip, summarize

sys.path.insert(0, str(Path(__file__).parent))

SENTENCE = "bob paid my mum a big bonus"  # 8 bilabials: b b p m m m b b


def speak(text: str):
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    from lattice_talk.core.data import tts

    return tts.synthesize(text, "flite", "slt")  # flite is a Debian package (.ci/run installs it)


# ------------------------------------------------------------------------------------------ alignment
def test_alignment_finds_every_word_and_bilabial_where_the_synthesizer_spoke_it():
    from lattice_talk.core.speech.alignment import align_words, phone_events

    utterance = speak(SENTENCE)
    words = align_words(utterance.audio, utterance.sample_rate, SENTENCE)
    assert [w.word for w in words] == SENTENCE.split()
    assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))
    aligned = [p for p in phone_events(words) if p.phoneme in BILABIALS]
    truth = [p for p in utterance.phonemes if p.phoneme in BILABIALS]
    assert [p.phoneme for p in aligned] == [p.phoneme for p in truth] and len(truth) == 8
    # The synthesizer's own phoneme times are exact: the real-speech aligner lands within 50 ms of each centre.
    centres = lambda events: np.array([(p.start + p.end) / 2 for p in events])  # noqa: E731
    assert np.abs(centres(aligned) - centres(truth)).max() < 0.05


def test_the_retry_with_silence_around_the_audio_keeps_the_audios_times():
    from lattice_talk.core.speech.alignment import (ALIGN_RATE, FRAME_SECONDS, RETRY_PAD_SECONDS, _align_pass,
                                                    _decoder, phone_events, transcript_words)

    utterance = speak(SENTENCE)
    words = transcript_words(SENTENCE)
    plain = phone_events(_align_pass(_decoder(lm=None), utterance.audio, words, 0))
    silence = np.zeros(int(RETRY_PAD_SECONDS * ALIGN_RATE), np.float32)
    padded = phone_events(_align_pass(_decoder(lm=None), np.concatenate([silence, utterance.audio, silence]), words,
                                      int(round(RETRY_PAD_SECONDS / FRAME_SECONDS))))
    assert [p.phoneme for p in padded] == [p.phoneme for p in plain] and min(p.start for p in padded) >= 0.0
    assert max(abs(a.start - b.start) for a, b in zip(plain, padded)) <= 0.03


def test_alignment_names_unknown_words_and_refuses_a_transcript_of_other_speech():
    from lattice_talk.core.speech.alignment import AlignmentError, align_words, transcript_words

    utterance = speak(SENTENCE)
    assert transcript_words("Bob's 2 cats, 10!") == ["bob's", "two", "cats", "one", "zero"]
    with pytest.raises(AlignmentError, match="does not know: qwzrtx"):
        align_words(utterance.audio, utterance.sample_rate, "bob paid qwzrtx")
    with pytest.raises(AlignmentError, match="does not match the audio"):
        align_words(utterance.audio, utterance.sample_rate, " ".join(["seventeen extraordinary"] * 12))
    with pytest.raises(AlignmentError, match="16000 Hz"):
        align_words(utterance.audio, 22050, SENTENCE)


# ------------------------------------------------------------------------------------------ scoring
def _lips(opening: np.ndarray, phones: list[PhonemeEvent], fps: float = 25.0) -> RealLips:
    n = len(opening)
    return RealLips("clip", "spk", fps, opening, np.ones(n, bool), np.ones(n, bool), phones, np.zeros(n),
                    Path("x.wav"), 0.0, None)


def test_opening_ratio_and_loudness_window_are_exact():
    points = np.zeros((2, 4, 3))
    points[:, 0, 1], points[:, 1, 1] = [0.01, 0.0], [-0.01, 0.0]  # lips 2 cm apart, then touching
    points[:, 2, 0], points[:, 3, 0] = -0.05, 0.05  # eye corners 10 cm apart
    assert np.allclose(opening_ratio(points), [0.2, 0.0])
    rate = 1000
    samples = np.zeros(2000)
    samples[1000:] = 0.5
    env = loudness_envelope(samples, rate, np.array([0.5, 1.0, 1.5, 5.0]))
    assert np.allclose(env, [0.0, 0.5 * np.sqrt(0.5), 0.5, 0.0], atol=0.01)  # 60 ms window; 0 past the end


def test_the_lag_of_a_late_prediction_is_found_and_the_shared_lag_reported():
    rng = np.random.default_rng(0)
    real = np.convolve(rng.normal(size=300), np.ones(5) / 5, mode="same")
    late = np.roll(real, 3)  # 3 frames = 120 ms late at 25 fps
    row = score_clip(Prediction(late), _lips(real, []))
    assert row["best_lag_s"] == pytest.approx(0.12) and row["r_best_lag"] > 0.99 and row["r_lag0"] < 0.9
    summary = summarize([row, score_clip(Prediction(real), _lips(real, []))])
    assert summary["clips"] == 2 and summary["r_best_lag"] > 0.99 and abs(summary["shared_lag_s"]) <= 0.12


def test_closures_count_phones_the_speakers_own_closures_and_closures_where_the_lips_were_open():
    fps = 25.0
    real = np.full(100, 0.3)
    real[20:23] = 0.0  # the speaker closes here (a "b") ...
    real[60:62] = 0.0  # ... and here, where the prediction stays open
    gap = np.full(100, 5.0)
    gap[21] = 0.5  # closed within the first phone
    gap[80:83] = 0.2  # a closure where the speaker's lips are open
    phones = [PhonemeEvent("b", 20 / fps, 23 / fps), PhonemeEvent("m", 60 / fps, 62 / fps), PhonemeEvent("aa", 0.0, 0.5)]
    row = closure_scores(gap, _lips(real, phones, fps))
    assert (row["pbm"], row["pbm_closed"], row["pbm_missed_at_s"]) == (2, 1, [2.4])
    assert (row["own_closures"], row["own_closures_made"]) == (2, 1)
    assert (row["predicted_closures"], row["closures_where_open"]) == (2, 1)


# ------------------------------------------------------------------------------------------ rendered "real" face
@pytest.fixture(scope="module")
def spoken_video(tmp_path_factory):
    """A folder with a rendered talking head (video), its speech (wav) and a manifest;
    and the clip the head was animated with (the truth)."""
    pytest.importorskip("bpy", reason="scene tests need the bpy wheel")
    pytest.importorskip("mediapipe", reason="the 'video' extra")
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    import soundfile
    from spoken_head_fixtures import render_spoken_head

    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, sha256_of

    folder = tmp_path_factory.mktemp("real")
    _, clip, utterance = render_spoken_head(SENTENCE, folder)
    soundfile.write(folder / "head.wav", utterance.audio, utterance.sample_rate)
    entry = {"name": "rendered_head", "video": "head.mp4", "sha256": sha256_of(folder / "head.mp4"),
             "speaker": "default_head", "split": "test", "source": "rendered by the test", "license": "CC0", "audio": "head.wav",
             "audio_sha256": sha256_of(folder / "head.wav"), "transcript": SENTENCE, "transcript_source": "given"}
    (folder / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": [entry]}))
    return folder, clip, utterance


def _speaking_lips(releases: list[float], late_frames: float, fps: float = 25.0, seconds: float = 12.0,
                   outliers: dict[int, float] | None = None) -> RealLips:
    """A mouth that closes for a /b/ before each vowel and opens over 0.1 s, half open where the vowel starts, its
    picture ``late_frames`` behind the sound; ``outliers``: releases (by index) that many frames further off."""
    phones, opening = [], np.ones(int(seconds * fps))
    times = np.arange(len(opening)) / fps
    for k, release in enumerate(releases):
        phones += [PhonemeEvent("b", release - 0.1, release), PhonemeEvent("aa", release, release + 0.3)]
        parted = release - 0.05 + ((outliers or {}).get(k, 0.0) + late_frames) / fps
        shape = np.clip(np.maximum((parted - 0.1 - times) / 0.1, (times - parted) / 0.1), 0.0, 1.0)
        opening = np.minimum(opening, np.where(np.abs(times - parted) < 0.4, shape, 1.0))
    return _lips(0.3 * opening, phones, fps)


def test_the_release_check_reads_how_late_the_picture_is_from_where_the_lips_part():
    from lattice_talk.core.real_av.lip_release import release_sync

    releases = [1.0, 2.5, 4.0, 5.5, 7.0, 8.5]
    for late in (0, 3, -5):
        sync = release_sync(_speaking_lips(releases, late))
        assert len(sync.lags) == 6 and sync.frames == late and abs(sync.median - late) < 0.1
    # Two releases that caught another closure do not move it; too few agreeing releases say nothing.
    assert release_sync(_speaking_lips(releases, 2, outliers={0: 5.0, 3: -4.0})).frames == 2
    eight = [1.0, 2.2, 3.4, 4.6, 5.8, 7.0, 8.2, 9.4]  # half of them late by 2, the rest scattered later (median 3.25)
    assert release_sync(_speaking_lips(eight, 2, outliers={1: 2.5, 3: 4.0, 5: 5.5, 7: 7.0})).frames == 2
    assert release_sync(_speaking_lips(releases[:2], 2)).frames is None
    assert release_sync(_speaking_lips(releases, 2, outliers={0: 5.0, 1: -4.0, 2: 4.0, 3: -2.5})).frames is None


@pytest.mark.blender
def test_tracked_lips_of_a_rendered_speaker_follow_the_lips_it_was_animated_with(spoken_video, tmp_path):
    from lattice_talk.core.real_av.evaluate import HeadLips
    from lattice_talk.core.real_av.manifest import load_manifest
    from lattice_talk.core.real_av.real_lips import load_real_lips

    folder, truth, _ = spoken_video
    clip = load_manifest(folder / "manifest.json")[0]
    lips = load_real_lips(clip, folder, tmp_path / "cache")
    assert lips.fps == 25.0 and lips.valid.mean() > 0.9 and len(lips.bilabials) == 8
    opening, gap = HeadLips()(truth)
    row = score_clip(Prediction(opening, gap), lips)
    assert row["r_lag0"] > 0.8 and abs(row["best_lag_s"]) <= 0.04, row
    assert row["pbm"] == 8 and row["pbm_closed"] >= 7
    # The cache gives the same measurement without tracking again.
    again = load_real_lips(clip, folder, tmp_path / "cache")
    assert np.array_equal(again.opening, lips.opening)


@pytest.mark.blender
def test_eval_real_command_scores_a_model_beside_loudness_and_checks_the_files(spoken_video, tmp_path, capsys):
    from pipeline_fixtures import save_tiny_decoder

    from lattice_talk.cli import main

    folder, _, _ = spoken_video
    (tmp_path / "tiny").mkdir()
    model = save_tiny_decoder(tmp_path / "tiny")
    code = main(["speech", "eval-real", "--data", str(folder), "--manifest", str(folder / "manifest.json"),
                 "--model", str(model), "--out", str(tmp_path / "report"), "--figures", "--transcript-mode",
                 "--recognition-mode"])
    assert code == 0
    report = json.loads((tmp_path / "report" / "real_speech.json").read_text())
    summary = report["summary"]
    assert set(summary) == {"tiny", "tiny + transcript", "tiny + recognition", "loudness envelope"}
    assert summary["tiny"]["pbm"] == 8 and "pbm" not in summary["loudness envelope"]
    # The untrained decoder seals none by itself; the clip's own words seal every p/b/m, the recogniser's most.
    assert summary["tiny"]["pbm_closed"] == 0
    assert summary["tiny + transcript"]["pbm_closed"] == 8
    assert summary["tiny + recognition"]["pbm"] == 8 and summary["tiny + recognition"]["pbm_closed"] >= 6
    assert (tmp_path / "report" / "figures" / "rendered_head.png").stat().st_size > 10_000
    assert "loudness envelope" in capsys.readouterr().out
    # A file that is not the manifest's is named, with where to take it from.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("head.mp4", "manifest.json"):
        (damaged / name).write_bytes((folder / name).read_bytes())
    (damaged / "head.wav").write_bytes(b"RIFF0000")
    with pytest.raises(LatticeTalkError, match=r"head\.wav differs from the manifest's .*rendered by the test"):
        from lattice_talk.core.real_av.manifest import check_folder, load_manifest

        check_folder(load_manifest(damaged / "manifest.json"), damaged)


@pytest.mark.blender
def test_real_shards_carry_the_tracked_mouth_with_confidence_and_train_the_decoder(spoken_video, tmp_path):
    from lattice_talk.core.data.corpus import Corpus
    from lattice_talk.core.real_av.evaluate import HeadLips
    from lattice_talk.core.real_av.shards import build_real_corpus
    from lattice_talk.core.speech.train import LossWeights, load_examples, train_decoder

    folder, truth, _ = spoken_video
    video = tmp_path / "videos" / "head.mp4"
    video.parent.mkdir()
    # The rendered video has no sound track; the shard builder reads the sound from the video file, so mux it.
    _mux(folder / "head.mp4", folder / "head.wav", video)
    summary = build_real_corpus([video, video], lambda v: SENTENCE.split(), "rendered", tmp_path / "corpus",
                                tmp_path / "tracks", heldout_share=0.5, augmented_copies=1)
    assert summary["utterances"] == {"train": 2, "heldout": 1} and summary["failed"] == []
    utterance, recorded = Corpus(tmp_path / "corpus").utterances("train")
    # The augmented copy: the same frames and targets, the sound through another room and microphone.
    assert recorded.id.endswith("-aug0") and np.array_equal(recorded.units, utterance.units)
    assert len(recorded.audio) == len(utterance.audio) and not np.allclose(recorded.audio, utterance.audio, atol=1e-3)
    assert recorded.meta["augment"] and [p.phoneme for p in recorded.phonemes] == [p.phoneme for p in utterance.phonemes]
    assert utterance.confidence is not None and np.median(utterance.confidence) > 0.85
    assert sum(p.phoneme in BILABIALS for p in utterance.phonemes) == 8
    # The targets reproduce the animated mouth: their opening on the default head follows the truth's.
    from lattice_talk.core.clip import AnimationClip

    jaw = np.zeros((len(utterance.jaw), 3), np.float32)
    jaw[:, 0] = utterance.jaw
    target = AnimationClip(fps=30.0, start_frame=1, head_id=truth.head_id, expression=utterance.units,
                           expression_names=utterance.unit_names, jaw=jaw)
    head_lips = HeadLips()
    got, truth_open = head_lips(target)[0], head_lips(truth)[0]
    truth_at_30 = np.interp(np.arange(len(got)) / 30.0, np.arange(len(truth_open)) / 25.0, truth_open)
    assert np.corrcoef(got, truth_at_30)[0, 1] > 0.8
    examples = load_examples(tmp_path / "corpus", "train")
    assert examples[0].weight.shape == examples[0].jaw.shape and examples[0].weight.max() <= 1.0
    history = train_decoder(tmp_path / "corpus", tmp_path / "model", epochs=1, steps_per_epoch=2, batch_size=2,
                            hidden=16, dilations=(1,), weights=LossWeights(lip_mm=0.0))
    assert np.isfinite(history["heldout"][0])


def _mux(video: Path, wav: Path, out: Path) -> None:
    """Copy the video stream and add the WAV as AAC (PyAV)."""
    import av
    import soundfile

    samples, rate = soundfile.read(wav, dtype="float32")
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate)
        aout.layout = "mono"
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in aout.encode(frame):
            dst.mux(packet)
        for packet in aout.encode(None):
            dst.mux(packet)


def test_voice_shards_close_the_teachers_mouth_on_every_aligned_bilabial_and_list_what_fails(tmp_path):
    """Audio-only real speech (the shipped GRID clips): phones by alignment, motion from a teacher model, sealed on
    every p/b/m; a line whose text is not its speech is left out and named."""
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    from pipeline_fixtures import save_tiny_decoder
    from real_media import GRID_DIR

    from lattice_talk.core.mouth import closure_curve, SEAL_JAW
    from lattice_talk.core.data.corpus import Corpus
    from lattice_talk.core.real_av.shards import read_grid_words
    from lattice_talk.core.real_av.voice_shards import build_voice_corpus, read_line_table
    from lattice_talk.core.speech.train import load_examples

    (tmp_path / "teacher").mkdir()
    teacher = save_tiny_decoder(tmp_path / "teacher")
    table = tmp_path / "lines.tsv"
    rows = [f"{GRID_DIR / stem}.mpg\t{' '.join(read_grid_words(GRID_DIR / f'{stem}.align'))}\tgrid_s1"
            for stem in ("pbai7a", "sgic1a")]
    rows.append(f"{GRID_DIR / 'sgic1a.mpg'}\tthe quick brown fox jumps over the lazy dog")  # not what is said
    table.write_text("\n".join(rows) + "\n")
    lines = read_line_table(table)
    assert [line.speaker for line in lines] == ["grid_s1", "grid_s1", "grid_s1"]
    summary = build_voice_corpus(lines, teacher, tmp_path / "corpus", "grid", heldout_share=0.0)
    assert summary["utterances"] == {"train": 2, "heldout": 0} and summary["speakers"] == ["grid_s1"]
    assert len(summary["failed"]) == 1 and "sgic1a.mpg" in summary["failed"][0]
    utterances = list(Corpus(tmp_path / "corpus").utterances("train"))
    words = [u.meta["text"].split() for u in utterances]
    assert words == [read_grid_words(GRID_DIR / "pbai7a.align"), read_grid_words(GRID_DIR / "sgic1a.align")]
    # "place blue at i seven again" / "set green in c one again": p, b (and no m) where the speaker said them.
    bilabials = [[p.phoneme for p in u.phonemes if p.phoneme in BILABIALS] for u in utterances]
    assert bilabials == [["p", "b"], []]
    first = utterances[0]
    closure = closure_curve(first.phonemes, np.arange(len(first.jaw)) / first.fps, first.fps)
    assert np.allclose(first.jaw[closure >= 1.0], SEAL_JAW)  # the teacher's jaw replaced by the seal
    example = load_examples(tmp_path / "corpus", "train")[0]
    assert example.bilabial.any() and np.array_equal(example.closure >= 1.0, closure >= 1.0)
    with pytest.raises(LatticeTalkError, match="audio<TAB>text"):
        (tmp_path / "bad.tsv").write_text("only-one-column\n")
        read_line_table(tmp_path / "bad.tsv")


def _source_folder(root: Path) -> tuple[Path, str]:
    """A cloned-repository layout under ``root``: one generated recording and its sha256."""
    from lattice_talk.core.real_av.manifest import sha256_of

    soundfile = pytest.importorskip("soundfile")
    wav = root / "owner+name" / "clips" / "tone.wav"
    wav.parent.mkdir(parents=True)
    t = np.arange(16000) / 16000
    soundfile.write(wav, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    return wav, sha256_of(wav)


def test_a_line_table_with_checksums_reads_paths_under_root_and_skips_comments(tmp_path):
    from lattice_talk.core.real_av.voice_shards import check_line_files, read_line_table

    wav, digest = _source_folder(tmp_path / "sources")
    table = tmp_path / "elsewhere" / "voices.tsv"
    table.parent.mkdir()
    table.write_text("# audio\ttext\tspeaker\tsha256\tsource\tlicense\n"
                     f"owner+name/clips/tone.wav\ta tone\tann\t{digest}\towner/name@{'0' * 40}\tCC0-1.0\n"
                     "# a comment between rows\n")
    [line] = read_line_table(table, root=tmp_path / "sources")
    assert (line.audio, line.text, line.speaker, line.sha256) == (wav, "a tone", "ann", digest)
    assert line.source == f"owner/name@{'0' * 40}"
    check_line_files([line])  # the file is the table's: no error
    assert read_line_table(table)[0].audio == table.parent / "owner+name/clips/tone.wav"  # default: the table's folder
    with pytest.raises(LatticeTalkError, match="no sha256"):
        (tmp_path / "bad.tsv").write_text("a.wav\ttext\tann\tnot-a-checksum\n")
        read_line_table(tmp_path / "bad.tsv")


def test_data_voices_refuses_a_file_that_is_not_the_tables_naming_it_and_its_source_and_writes_nothing(tmp_path, capsys):
    from lattice_talk.cli import EXIT_BAD_INPUT, main

    wav, digest = _source_folder(tmp_path / "sources")
    table = tmp_path / "voices.tsv"
    rows = [f"owner+name/clips/tone.wav\ta tone\tann\t{'f' * 64}\towner/name@{'1' * 40}\tCC0-1.0",
            f"owner+name/clips/gone.wav\tgone\tann\t{digest}\towner/name@{'2' * 40}\tCC0-1.0"]
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "corpus"
    code = main(["data", "voices", "--lines", str(table), "--root", str(tmp_path / "sources"), "--tag", "t",
                 "--out", str(out), "--teacher", str(tmp_path / "no-model")])
    error = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and not out.exists()  # refused before the teacher is loaded or a shard written
    assert f"{wav} differs from the table's (sha256 mismatch; take it unchanged from owner/name@{'1' * 40})" in error
    assert f"gone.wav is missing (take it unchanged from owner/name@{'2' * 40})" in error


@pytest.mark.parametrize("table, n_lines, n_speakers", [("training_voices.tsv", 502, 98),
                                                        ("training_voice_cathy.tsv", 1620, 1)])
def test_the_shipped_training_voices_name_every_original_and_no_heldout_speaker(table, n_lines, n_speakers):
    from lattice_talk.core.real_av.manifest import load_manifest
    from lattice_talk.core.paths import DATASETS_DIR
    from lattice_talk.core.real_av.voice_shards import read_line_table

    lines = read_line_table(DATASETS_DIR / table, root="/sources")
    assert len(lines) == n_lines and len({line.speaker for line in lines}) == n_speakers
    rows = [row.split("\t") for row in (DATASETS_DIR / table).read_text(encoding="utf-8").splitlines()
            if not row.startswith("#")]
    assert all(len(row) == 6 and row[5] for row in rows)
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", line.source) for line in lines)
    heldout = {clip.speaker.lower() for clip in load_manifest(DATASETS_DIR / "real_speech_heldout.json")}
    assert not heldout & {line.speaker.lower() for line in lines}


def test_a_manifest_never_puts_one_speaker_in_both_splits_and_the_shipped_one_is_well_formed(tmp_path):
    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, load_manifest

    entry = {"video": "a.mp4", "sha256": "0" * 64, "speaker": "ann", "source": "s", "license": "l"}
    clips = [{**entry, "name": "a", "split": "dev"}, {**entry, "name": "b", "split": "test"}]
    (tmp_path / "m.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": clips}))
    with pytest.raises(LatticeTalkError, match=r"\['ann'\] are in both"):
        load_manifest(tmp_path / "m.json")
    shipped = load_manifest(Path(__file__).resolve().parents[1] / "datasets" / "real_speech_heldout.json")
    assert len(shipped) >= 25 and all(c.transcript or c.phone_labels for c in shipped)
    assert not any(c.speaker == "grid_s1" or c.video.endswith("bbaf2n.mpg") for c in shipped)  # the training speaker
    # A GRID clip's words are its file name's six letters, spelled by the corpus's grammar.
    slots = ({"b": "bin", "l": "lay", "p": "place", "s": "set"}, {"b": "blue", "g": "green", "r": "red", "w": "white"},
             {"a": "at", "b": "by", "i": "in", "w": "with"}, None,
             {"z": "zero", **{str(d): w for d, w in enumerate("zero one two three four five six seven eight nine".split())}},
             {"a": "again", "n": "now", "p": "please", "s": "soon"})
    grid = [c for c in shipped if c.transcript_source == "grid_grammar"]
    assert len(grid) >= 60
    for clip in grid:
        code = Path(clip.video).stem.rsplit("_", 1)[-1]
        assert clip.transcript == " ".join(code[k] if table is None else table[code[k]] for k, table in enumerate(slots)), clip


def test_data_heldout_assembles_the_folder_from_git_history_and_folders_by_checksum(tmp_path, capsys):
    import hashlib
    import subprocess

    from lattice_talk.cli import main
    from lattice_talk.core.real_av.manifest import MANIFEST_FORMAT, check_folder, load_manifest

    files = {"early.mpg": b"a GRID video removed in a later commit", "sound.wav": b"its sound",
             "labels.json": b"[27, 27, 6]", "elsewhere.mp4": b"a clip in a plain folder"}
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    repo = tmp_path / "owner+repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    for name in ("early.mpg", "sound.wav", "labels.json"):
        (repo / "data" / name).parent.mkdir(exist_ok=True)
        (repo / "data" / name).write_bytes(files[name])
    git("add", "-A"), git("commit", "-qm", "clips")
    git("rm", "-q", "data/early.mpg"), git("commit", "-qm", "drop the video")
    folder = tmp_path / "plain"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "clip.mp4").write_bytes(files["elsewhere.mp4"])
    entry = {"speaker": "s", "split": "test", "license": "l", "transcript": "bin blue"}
    clips = [{**entry, "name": "a", "video": "a.mpg", "sha256": digest["early.mpg"], "source": "owner/repo data/early.mpg",
              "audio": "a.wav", "audio_sha256": digest["sound.wav"], "phone_labels": "a.json",
              "phone_labels_sha256": digest["labels.json"]},
             {**entry, "name": "b", "video": "b.mp4", "sha256": digest["elsewhere.mp4"], "source": "somewhere/else"},
             {**entry, "name": "c", "video": "c.mp4", "sha256": "0" * 64, "source": "gone/repo c.mp4"}]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "phone_index": ["B", "P"], "clips": clips}))
    out = tmp_path / "clips"
    # A file no source holds is named with its source; the others are copied under the manifest's names.
    assert main(["data", "heldout", "--manifest", str(manifest), "--sources", str(repo), str(folder), "--out", str(out)]) == 2
    assert re.search(r"1 files are in none of the sources .*c\.mp4: from gone/repo c\.mp4", capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.mpg", "a.wav", "b.mp4"]
    assert (out / "a.mpg").read_bytes() == files["early.mpg"]  # from the history: HEAD no longer has it
    check_folder(load_manifest(manifest)[:2], out)
    # Phone labels without a recorded sha256 (an older manifest) are checked for being there, not for their bytes.
    from dataclasses import replace

    first = load_manifest(manifest)[0]
    check_folder([replace(first, phone_labels_sha256=None)], out)
    with pytest.raises(LatticeTalkError, match=r"b\.json is missing \(from owner/repo"):
        check_folder([replace(first, phone_labels="b.json", phone_labels_sha256=None)], out)
    # Run again without the missing clip: the files already there with their sha256 are kept.
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "phone_index": ["B", "P"], "clips": clips[:2]}))
    assert main(["data", "heldout", "--manifest", str(manifest), "--sources", str(repo), "--out", str(out)]) == 0
    assert "4 files in" in capsys.readouterr().out


@pytest.mark.blender
def test_eval_offset_command_scores_every_case_against_zero_and_the_clips_own_offset(spoken_video, tmp_path, capsys):
    """The rendered head's picture and sound are in step. Its releases are measured (its words are aligned); its fast
    synthetic speech puts a neighbouring closure in some release windows, so they may not agree on an offset (Blender
    5.0's render) or agree within a frame of 0 (4.2's). The same clip without words has no releases at all, so its
    own offset is taken as 0; every case is scored against 0 and against the clip's own offset."""
    from lattice_talk.cli import main

    folder, _, _ = spoken_video
    manifest = json.loads((folder / "manifest.json").read_text())
    wordless = {k: v for k, v in manifest["clips"][0].items() if k not in ("transcript", "transcript_source")}
    manifest["clips"].append({**wordless, "name": "rendered_head_no_words"})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    code = main(["video", "eval-offset", "--data", str(folder), "--manifest", str(tmp_path / "manifest.json"),
                 "--with-separate-sound", "--out", str(tmp_path / "offset" / "av_offset.json")])
    assert code == 0
    report = json.loads((tmp_path / "offset" / "av_offset.json").read_text())
    cases = {(c["clip"], c["shift"]): c for c in report["cases"]}
    assert len(cases) == 10 and "against the own offset" in capsys.readouterr().out
    own = cases["rendered_head", 0]["release"]
    assert own is None or abs(own) <= 1
    for shift in (0, 3, -3, 7, -7):
        spoken, wordless_case = cases["rendered_head", shift], cases["rendered_head_no_words", shift]
        assert spoken["releases"] >= 3 and spoken["release"] == (None if own is None else own + shift)
        assert wordless_case["releases"] == 0 and wordless_case["release"] is None
        assert wordless_case["own_outcome"] == wordless_case["outcome"]  # no releases: its own offset is 0
        for case in (spoken, wordless_case):
            assert case["outcome"] != "wrong" and case["own_outcome"] != "wrong"
            assert (case["outcome"] == "declined") == (case["own_outcome"] == "declined")
    summary = report["summary"]["own offset (release offset where known, else 0)"]
    # The shipped model reads the offset from its mouth-opening head, trained on real lips: on this rendered head,
    # animated by the decoder from a synthetic voice, its evidence is too weak for a 3 s clip (declined, never wrong).
    assert summary["all"]["cases"] == 10 and summary["all"]["wrong"] == 0
    # The same model without the head reads the decoder's own mouth, which animated the render: it places the speaker.
    import shutil

    from lattice_talk.core.speech.model import OPENING_CONFIG, OPENING_FILE
    from lattice_talk.core.speech.pipeline import MODEL_DIR

    decoder_mouth = tmp_path / "decoder_mouth"
    shutil.copytree(MODEL_DIR, decoder_mouth, ignore=shutil.ignore_patterns(OPENING_FILE, OPENING_CONFIG))
    assert main(["video", "eval-offset", "--data", str(folder), "--manifest", str(tmp_path / "manifest.json"),
                 "--with-separate-sound", "--model", str(decoder_mouth), "--out", str(tmp_path / "d" / "av_offset.json")]) == 0
    summary = json.loads((tmp_path / "d" / "av_offset.json").read_text())["summary"]
    assert summary["own offset (release offset where known, else 0)"]["all"]["right"] >= 8  # the speaker is placed


def test_a_picture_late_against_its_sound_is_read_on_the_sound_clock():
    """A mouth that opens at picture frame 52 in a file whose picture is 2.5 frames late opens at sound frame 49.5:
    moved by 2.5 frames, the real lips peak between frames 49 and 50; frames whose picture lies past the video's end,
    or touches an untracked frame, are left out."""
    from pathlib import Path

    from lattice_talk.core.real_av.lip_release import picture_on_sound_clock
    from lattice_talk.core.real_av.real_lips import RealLips

    n = 80
    opening = np.exp(-0.5 * ((np.arange(n) - 52.0) / 2.0) ** 2)
    valid = np.ones(n, bool)
    valid[20] = False
    lips = RealLips("clip", "speaker", 25.0, opening, valid, np.ones(n, bool), [], np.zeros(n), Path("clip.wav"), 0.0,
                    None)
    moved = picture_on_sound_clock(lips, 2.5)
    assert moved.speech is lips.speech and moved.loudness is lips.loudness  # the sound's own arrays stay
    assert np.nanargmax(moved.opening) in (49, 50) and moved.opening[49] == pytest.approx(moved.opening[50])
    assert not moved.valid[-3:].any() and moved.valid[-4] is np.True_  # frame 77 reads picture 79.5: outside
    assert not moved.valid[17] and not moved.valid[18] and moved.valid[16] and moved.valid[19]  # 19.5, 20.5 touch 20
    assert np.isnan(moved.opening[~moved.valid]).all()


# ------------------------------------------------------------------------------------ held-out voices, no face
def test_closures_off_pbm_are_closures_in_words_that_touch_no_pbm():
    from lattice_talk.core.real_av.score import predicted_closed
    from lattice_talk.core.real_av.voice_closures import off_pbm_closures

    fps, n = 25.0, 100
    lips = _lips(np.zeros(n), [PhonemeEvent("m", 20 / fps, 22 / fps)], fps)
    lips.speech[:] = False
    lips.speech[10:90] = True  # one long word
    gap = np.full(n, 5.0)
    gap[23] = 0.5  # one frame after the m: it counts as the m's closure
    gap[50:53] = 0.2  # a closure inside the word, far from any p/b/m
    gap[95:98] = 0.2  # a closure outside every word (a pause): not counted
    assert off_pbm_closures(predicted_closed(gap, lips), lips) == 1


def _voice_table(tmp_path: Path) -> Path:
    soundfile = pytest.importorskip("soundfile")
    from lattice_talk.core.real_av.manifest import sha256_of

    audio = speak(SENTENCE)
    root = tmp_path / "voices"
    (root / "owner+name").mkdir(parents=True)
    rows = []
    for stem, text in (("bob", SENTENCE), ("wrong", "the quick brown fox jumps over the lazy dog")):
        wav = root / "owner+name" / f"{stem}.wav"
        soundfile.write(wav, audio.audio, audio.sample_rate)
        rows.append(f"owner+name/{stem}.wav\t{text}\tslt\t{sha256_of(wav)}\towner/name@{'0' * 40}\tCC0-1.0")
    # The same sentence as the second utterance of a joined file, named by its span of samples.
    joined = root / "owner+name" / "joined.wav"
    pause = np.zeros(audio.sample_rate // 2, audio.audio.dtype)
    soundfile.write(joined, np.concatenate([audio.audio, pause, audio.audio]), audio.sample_rate, subtype="PCM_16")
    first = len(audio.audio) + len(pause) // 2
    rows.append(f"owner+name/joined.wav\t{SENTENCE}\tslt\t{sha256_of(joined)}\towner/name@{'0' * 40}\tCC0-1.0\t"
                f"{first}-{len(audio.audio) * 2 + len(pause)}")
    table = root / "voices.tsv"
    table.write_text("# audio\ttext\tspeaker\tsha256\tsource\tlicense\n" + "\n".join(rows) + "\n")
    return table


@pytest.mark.blender
def test_eval_voices_scores_pbm_on_true_words_without_a_face_and_names_lines_it_cannot_align(tmp_path, capsys):
    from pipeline_fixtures import save_tiny_decoder

    from lattice_talk.cli import main

    table = _voice_table(tmp_path)
    (tmp_path / "tiny").mkdir()
    model = save_tiny_decoder(tmp_path / "tiny")
    code = main(["speech", "eval-voices", "--lines", str(table), "--model", str(model), "--recognition-mode",
                 "--out", str(tmp_path / "report")])  # --root: the table's folder
    assert code == 0
    captured = capsys.readouterr()
    assert main(["speech", "eval-voices", "--split", "dev"]) != 0
    assert "give --root, the folder holding the held-out voices' sources" in capsys.readouterr().err
    report = json.loads((tmp_path / "report" / "real_voices.json").read_text())
    summary = report["summary"]
    assert set(summary) == {"tiny", "tiny + recognition"}
    # "bob paid my mum a big bonus", alone and cut from the joined file: 8 true p/b/m each; the untrained decoder
    # seals none, the recogniser's words most.
    assert (summary["tiny"]["lines"], summary["tiny"]["speakers"], summary["tiny"]["pbm"]) == (2, 1, 16)
    assert summary["tiny"]["pbm_closed"] == 0 and summary["tiny"]["closures_off_pbm"] == 0
    assert summary["tiny + recognition"]["pbm"] == 16 and summary["tiny + recognition"]["pbm_closed"] >= 12
    cut, whole = report["lines"]["tiny + recognition"][1], report["lines"]["tiny + recognition"][0]
    assert cut["line"].startswith("002_joined_") and cut["pbm"] == whole["pbm"] == 8
    # The line whose text is not its speech is left out, named with the aligner's reason.
    [skipped] = report["unaligned"]
    assert skipped["audio"].endswith("wrong.wav") and "does not match the audio" in skipped["reason"]
    assert "wrong.wav" in captured.err and "p/b/m closed" in captured.out


def test_a_span_of_a_longer_file_is_cut_losslessly_and_a_bad_span_is_refused(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    from lattice_talk.core.real_av.manifest import sha256_of
    from lattice_talk.core.real_av.voice_shards import check_line_files, line_audio_file, read_line_table

    samples = (np.arange(48000) % 2000 - 1000).astype(np.int16)  # every value distinct within a period
    wav = tmp_path / "joined.wav"
    soundfile.write(wav, samples, 16000, subtype="PCM_16")
    table = tmp_path / "lines.tsv"
    table.write_text(f"joined.wav\tfirst\tann\t{'0' * 64}\to/n@{'0' * 40}\tCC0-1.0\t100-16100\n"
                     f"joined.wav\twhole\tann\n")
    spanned, whole = read_line_table(table)
    assert spanned.span == (100, 16100) and whole.span is None
    cut = line_audio_file(spanned, tmp_path)
    read, rate = soundfile.read(cut, dtype="int16")
    assert rate == 16000 and np.array_equal(read, samples[100:16100])
    assert line_audio_file(whole, tmp_path) == wav
    for bad in ("16100-100", "1-2-3"):
        (tmp_path / "bad.tsv").write_text(f"joined.wav\tx\tann\t{'0' * 64}\to/n\tCC0-1.0\t{bad}\n")
        with pytest.raises(LatticeTalkError, match=f"'{bad}' in column 7, where a sample span FIRST-END"):
            read_line_table(tmp_path / "bad.tsv")
    # Other sample types and a lossless container come out sample for sample, in their own format.
    wide = np.sin(np.arange(48000) / 7.0)
    (tmp_path / "cuts").mkdir()
    for name, subtype, dtype in (("wide.wav", "PCM_24", "int32"), ("float.wav", "FLOAT", "float32"),
                                 ("double.wav", "DOUBLE", "float64"), ("lossless.flac", "PCM_16", "int16")):
        soundfile.write(tmp_path / name, 0.5 * wide, 16000, subtype=subtype)
        (tmp_path / "kind.tsv").write_text(f"{name}\tx\tann\t{'0' * 64}\to/n\tCC0-1.0\t100-16100\n")
        cut = line_audio_file(read_line_table(tmp_path / "kind.tsv")[0], tmp_path / "cuts")
        assert cut.suffix == Path(name).suffix and soundfile.info(cut).subtype == subtype
        assert np.array_equal(soundfile.read(cut, dtype=dtype)[0], soundfile.read(tmp_path / name, dtype=dtype)[0][100:16100])
    # A span past the file's end, or of lossy audio, is one error naming the file and the fix, before any work.
    soundfile.write(tmp_path / "lossy.ogg", 0.5 * wide, 16000)
    (tmp_path / "long.tsv").write_text(
        f"joined.wav\tx\tann\t{sha256_of(wav)}\to/n\tCC0-1.0\t40000-50000\n"
        f"lossy.ogg\tx\tann\t{sha256_of(tmp_path / 'lossy.ogg')}\to/n\tCC0-1.0\t0-100\n")
    long, lossy = read_line_table(tmp_path / "long.tsv")
    with pytest.raises(LatticeTalkError, match=r"joined\.wav: samples 40000-50000 run past its end \(48000 samples\)"):
        line_audio_file(long, tmp_path)
    with pytest.raises(LatticeTalkError, match=r"lossy\.ogg: .*OGG VORBIS is not\); convert the file to WAV or FLAC"):
        check_line_files([long, lossy])


def test_the_heldout_voices_are_speakers_no_training_and_no_other_split_reads():
    from lattice_talk.core.paths import DATASETS_DIR
    from lattice_talk.core.real_av.manifest import load_manifest
    from lattice_talk.core.real_av.voice_shards import read_line_table

    split = {name: read_line_table(DATASETS_DIR / f"real_voices_{name}.tsv", root="/sources") for name in ("dev", "test")}
    speakers = {name: {line.speaker for line in lines} for name, lines in split.items()}
    assert (len(split["dev"]), len(split["test"])) == (100, 98) and len(speakers["dev"]) == len(speakers["test"]) == 20
    assert not speakers["dev"] & speakers["test"]
    everyone = speakers["dev"] | speakers["test"]
    training = {line.speaker for table in ("training_voices.tsv", "training_voice_cathy.tsv")
                for line in read_line_table(DATASETS_DIR / table, root="/sources")}
    audiovisual = {clip.speaker for clip in load_manifest(DATASETS_DIR / "real_speech_heldout.json")}
    assert not everyone & (training | audiovisual | {"grid_s1"})
    assert all(line.span is not None and line.sha256 and re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", line.source)
               for lines in split.values() for line in lines)


@pytest.mark.blender
def test_voice_shards_from_spans_of_one_file_are_one_utterance_each(tmp_path):
    """Two utterances of one joined file, named by their spans: two training utterances with their own ids and
    sources, each the sentence's own audio and phones."""
    from pipeline_fixtures import save_tiny_decoder

    from lattice_talk.core.data.corpus import Corpus
    from lattice_talk.core.real_av.voice_shards import build_voice_corpus, read_line_table

    table = _voice_table(tmp_path)
    spans = [line for line in read_line_table(table) if line.span is not None]
    first = (0, spans[0].span[0])  # the first copy of the sentence and half the pause: the same joined file
    table.write_text(table.read_text() + table.read_text().splitlines()[-1].rsplit("\t", 1)[0] + f"\t{first[0]}-{first[1]}\n")
    lines = [line for line in read_line_table(table) if line.span is not None]
    assert [line.span for line in lines] == [spans[0].span, first]
    (tmp_path / "teacher").mkdir()
    summary = build_voice_corpus(lines, save_tiny_decoder(tmp_path / "teacher"), tmp_path / "corpus", "t",
                                 heldout_share=0.0)
    assert summary["utterances"] == {"train": 2, "heldout": 0} and summary["failed"] == []
    utterances = list(Corpus(tmp_path / "corpus").utterances("train"))
    assert len({u.meta["id"] for u in utterances}) == 2
    assert sorted(u.meta["source"] for u in utterances) == sorted(f"joined_{a}_{b}.wav" for a, b in (spans[0].span, first))
    for u in utterances:
        assert [p.phoneme for p in u.phonemes if p.phoneme in BILABIALS] == ["b", "b", "p", "m", "m", "m", "b", "b"]
