"""Audio-only blinks (core.prosody.add_prosody, as the speech pipeline draws them): never where a reference
video has a say — inside its fades or a gap's — and drawn from the audio as well as the seed, so two clips made with
one seed do not blink on the same frames. Real inputs: flite speech; the speech pipeline with a small random-init
decoder (as in test_speech_pipeline.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lattice_talk.core.prosody import add_prosody, energy_pauses

FPS = 25.0
NAMES = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeBlinkLeft", "eyeBlinkRight", "jawOpen")


def flite(text):
    from lattice_talk.core.data import tts

    return tts.synthesize(text, "flite", "slt")


def audio_only_blinks(samples, rate, seed, blink_free=None):
    n = int(round(len(samples) / rate * FPS))
    units = np.zeros((n, len(NAMES)))
    pauses = energy_pauses(samples, rate, FPS, n)
    add_prosody(units, NAMES, samples, rate, FPS, np.random.default_rng(seed), pauses, blink_free=blink_free)
    return units[:, 3]


def test_no_audio_only_blink_touches_a_frame_where_the_video_has_a_say():
    from lattice_talk.core.motion.fusion import video_weight

    speech = flite("we walked along the river for an hour, talking about the weather, the garden and the summer "
                   "holidays, then we stopped for a coffee and a slice of cake before the long drive home")
    n = int(round(len(speech.audio) / speech.sample_rate * FPS))
    confidence = np.zeros(n)
    confidence[: n // 2] = 0.9  # the video covers the first half ...
    confidence[n // 5: n // 5 + 4] = 0.0  # ... with a lost stretch inside it
    weight = video_weight(confidence, FPS)
    seeds = range(12)
    free = {seed: audio_only_blinks(speech.audio, speech.sample_rate, seed) for seed in seeds}
    # Without the mask some seeds put a blink where the video fades out or in (the test would see a leak).
    assert any(((blink > 0) & (weight > 0) & (weight < 1)).any() for blink in free.values())
    for seed in seeds:
        masked = audio_only_blinks(speech.audio, speech.sample_rate, seed, blink_free=weight > 0)
        assert not (masked[weight > 0] > 0).any()
        # Every unmasked blink wholly where the video has no say is still there, frame for frame (the same draws).
        edges = np.flatnonzero(np.diff(np.r_[0, (free[seed] > 0).astype(int), 0]))
        for start, end in zip(edges[::2], edges[1::2]):
            if (weight[start:end] == 0).all():
                assert np.array_equal(masked[start:end], free[seed][start:end])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from pipeline_fixtures import save_tiny_decoder

    return save_tiny_decoder(tmp_path_factory.mktemp("decoder"))


def take_blinks(model_dir, wav, seed=0):
    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    settings = GenerateSettings(fps=FPS, seed=seed)
    clip = run_sync(SpeechPipeline(model_dir, threads=1), GenerateRequest(audio_path=wav, head=create("default"),
                                                                          settings=settings))
    return clip.expression[:, clip.expression_names.index("eyeBlinkLeft")] > 0.5


def test_two_clips_made_with_one_seed_blink_on_different_frames(model_dir, tmp_path):
    """Speech with no pause (nothing for blinks to gather at) from two sentences: with the seed alone both clips would
    blink on the same frames; the audio's digest in the seed sets them apart. One clip made twice is the same."""
    import soundfile

    texts = ("seventeen thin threads ran through the fabric of the worn grey coat",
             "many merry men marched merrily over the meadow toward the mill")
    blinks = []
    for k, text in enumerate(texts):
        speech = flite(text)
        voiced = speech.audio[np.abs(speech.audio) > 1e-3]  # cut the silences: no pause anywhere
        wav = tmp_path / f"line{k}.wav"
        soundfile.write(wav, np.tile(voiced, 3)[: 8 * speech.sample_rate], speech.sample_rate)
        assert energy_pauses(*soundfile.read(wav, dtype="float32"), FPS, 200) == []
        blinks.append(take_blinks(model_dir, wav))
    a, b = blinks
    assert a.sum() >= 3 and b.sum() >= 3  # each clip blinks
    assert (a & b).sum() <= 0.5 * min(a.sum(), b.sum())  # on frames of their own
    assert np.array_equal(take_blinks(model_dir, tmp_path / "line0.wav"), a)
