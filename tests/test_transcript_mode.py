"""Transcript mode: the line's words time its p/b/m closures (generate --transcript, line.txt in a batch).

Real inputs: a sentence spoken by flite's slt voice (built from a real speaker's recordings) and a tiny
random-init decoder saved like trained weights, so the closures seen come from the transcript, not the model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.phonemes import BILABIALS

sys.path.insert(0, str(Path(__file__).parent))

SENTENCE = "bob paid my mum a big bonus"


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    pytest.importorskip("pocketsphinx", reason="the 'align' extra (pocketsphinx==5.1.1)")
    pytest.importorskip("torch")
    import soundfile

    from pipeline_fixtures import save_tiny_decoder

    from lattice_talk.core.data import tts

    folder = tmp_path_factory.mktemp("line")
    utterance = tts.synthesize(SENTENCE, "flite", "slt")
    soundfile.write(folder / "line.wav", utterance.audio, utterance.sample_rate)
    (folder / "model").mkdir()
    return folder, save_tiny_decoder(folder / "model"), utterance


def _generate(model, wav, transcript, recognize_words=False):
    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    request = GenerateRequest(audio_path=wav, head=create("default"), settings=GenerateSettings(fps=30.0, recognize_words=recognize_words),
                              transcript=transcript)
    return run_sync(SpeechPipeline(model), request)


def _closed_bilabials(clip, utterance) -> int:
    from lattice_talk.core.metrics import event_frames
    from lattice_talk.core.real_av.evaluate import HeadLips

    gap = HeadLips()(clip)[1]
    closed = 0
    for phone in (p for p in utterance.phonemes if p.phoneme in BILABIALS):
        frames = event_frames(phone, clip.fps, clip.n_frames)
        closed += bool((gap[max(0, frames[0] - 1):frames[-1] + 2] < 1.0).any())
    return closed


def test_the_transcript_closes_every_bilabial_the_audio_alone_does_not(line):
    folder, model, utterance = line
    plain = _generate(model, folder / "line.wav", None)
    with_text = _generate(model, folder / "line.wav", SENTENCE)
    assert "transcript" not in plain.provenance
    report = with_text.provenance["transcript"]
    assert report["bilabials"] == 8 and [w[0] for w in report["words"]] == SENTENCE.split()
    # Measured against the synthesizer's own phone times, not the aligner's.
    assert _closed_bilabials(with_text, utterance) == 8 > _closed_bilabials(plain, utterance)
    # Away from the bilabials the take is the audio's: the transcript changes only the closures.
    assert np.allclose(with_text.expression[:3], plain.expression[:3])


def test_unusable_words_leave_the_take_to_the_audio_and_say_which(line):
    folder, model, _ = line
    plain = _generate(model, folder / "line.wav", None)
    clip = _generate(model, folder / "line.wav", "bob paid my qwzrtx")
    assert "qwzrtx" in clip.provenance["transcript"]["error"] and "audio alone" in clip.provenance["transcript"]["error"]
    assert np.array_equal(clip.expression, plain.expression)


def test_cli_transcript_option_and_batch_text_files(line, tmp_path, capsys):
    from lattice_talk.cli import main
    from lattice_talk.core.clip import load_clip

    folder, model, _ = line
    code = main(["generate", str(folder / "line.wav"), "--out", str(tmp_path / "one.npz"), "--speech-model", str(model),
                 "--transcript", "bob paid my qwzrtx", "--quiet"])
    assert code == 0 and "transcript not used" in capsys.readouterr().err
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("a", "b"):
        (batch / f"{name}.wav").write_bytes((folder / "line.wav").read_bytes())
    (batch / "a.txt").write_text(SENTENCE + "\n")
    assert main(["generate", str(batch), "--out", str(tmp_path / "takes"), "--speech-model", str(model), "--quiet"]) == 0
    assert load_clip(tmp_path / "takes" / "a.npz").provenance["transcript"]["bilabials"] == 8
    assert "transcript" not in load_clip(tmp_path / "takes" / "b.npz").provenance
    capsys.readouterr()
    assert main(["generate", str(batch), "--out", str(tmp_path / "x"), "--speech-model", str(model),
                 "--transcript", SENTENCE]) == 2
    assert "line.txt" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_recognition_mode_closes_the_bilabials_it_hears_without_a_transcript(line):
    """No transcript: the recogniser's words, aligned in chunks, time the closures (generate --recognize-words)."""
    folder, model, utterance = line
    plain = _generate(model, folder / "line.wav", None)
    heard = _generate(model, folder / "line.wav", None, recognize_words=True)
    report = heard.provenance["transcript"]
    assert report["source"] == "recognized" and report["text"] and report["bilabials"] >= 5
    assert heard.provenance["settings"]["recognize_words"] is True
    assert _closed_bilabials(heard, utterance) >= 6 > _closed_bilabials(plain, utterance)
    # A given transcript wins over recognition.
    given = _generate(model, folder / "line.wav", SENTENCE, recognize_words=True)
    assert given.provenance["transcript"]["source"] == "given"


def test_a_long_line_aligns_chunk_by_chunk(line):
    """Four sentences with pauses: each recognised chunk aligns on its own stretch, in the line's time."""
    from lattice_talk.core.speech.alignment import align_in_chunks, recognize_words

    _, _, utterance = line
    pause = np.zeros(int(0.6 * utterance.sample_rate), np.float32)
    one = np.concatenate([np.asarray(utterance.audio, np.float32), pause])
    samples = np.tile(one, 4)
    heard = recognize_words(samples, utterance.sample_rate)
    words, unaligned = align_in_chunks(samples, utterance.sample_rate, heard, chunk_words=5)
    assert len(words) + len(unaligned) == len(heard) and len(words) >= 0.75 * len(heard)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and starts[-1] > 3 * len(one) / utterance.sample_rate
    bilabial_times = [p.start for w in words for p in w.phones if p.phoneme in BILABIALS]
    assert sum(t > 3 * len(one) / utterance.sample_rate for t in bilabial_times) >= 4  # the last sentence's too


def test_a_given_transcript_the_aligner_cannot_take_in_one_pass_is_placed_where_the_recogniser_heard_it(line):
    """The true words of four sentences, one replaced by a word the recogniser cannot have heard there: each word is
    timed by the recogniser's run it matches (between its neighbours where it matches none) and aligned in chunks."""
    from lattice_talk.core.speech.alignment import align_in_chunks, anchored_words, transcript_words

    _, _, utterance = line
    pause = np.zeros(int(0.6 * utterance.sample_rate), np.float32)
    one = np.concatenate([np.asarray(utterance.audio, np.float32), pause])
    samples = np.tile(one, 4)
    seconds = len(one) / utterance.sample_rate
    words = transcript_words(" ".join([SENTENCE] * 4))
    words[9] = "elephant"  # "my" in the second sentence: no sound of it anywhere
    timed, heard = anchored_words(samples, utterance.sample_rate, words)
    assert 0.4 < heard < 1.0  # "mum" is heard "mom", "a" "the", "bob" not at all
    assert [w for w, _, _ in timed] == words
    starts = [start for _, start, _ in timed]
    assert starts == sorted(starts) and all(start < end for _, start, end in timed)
    for k in range(4):  # every sentence's words lie in its own stretch of the line (±0.3 s); the recogniser never
        sentence = timed[7 * k:7 * k + 7]  # hears "bob", so the first word spans the pause before it
        assert sentence[0][2] > k * seconds and sentence[1][1] > k * seconds - 0.3, (k, sentence)
        assert sentence[-1][2] < (k + 1) * seconds + 0.3, (k, sentence)
    aligned, unaligned = align_in_chunks(samples, utterance.sample_rate, timed, chunk_words=5)
    assert len(aligned) >= 24 and len(aligned) + len(unaligned) <= 28
    bilabial_times = [p.start for w in aligned for p in w.phones if p.phoneme in BILABIALS]
    assert sum(t > 3 * seconds for t in bilabial_times) >= 5  # the last sentence's p/b/m placed in its own time
    # Words of another recording are refused as the one-pass alignment refuses them: the recogniser hears none.
    from lattice_talk.core.speech.alignment import AlignmentError, align_transcript

    with pytest.raises(AlignmentError, match=r"does not match the audio .* heard 1?\d % of its words"):
        align_transcript(samples, utterance.sample_rate, "the quick brown fox jumps over the lazy dog " * 4)
