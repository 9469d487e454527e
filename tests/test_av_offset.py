"""The audio/video offset estimate (core.motion.fusion.estimate_offset): right or declined, never a wrong shift.

Real inputs the repo makes: flite speech and the default head rendered speaking it (spoken_head_fixtures), tracked
by MediaPipe; the shipped speech model predicts the mouth from the sound. Known shifts are applied to the sound as
the real-clip measurement applies them (core.real_av.offset_eval.shifted_sound)."""

from __future__ import annotations

import numpy as np
import pytest

from lattice_talk.core.motion.fusion import estimate_offset

TEXT = ("the quick brown fox jumps over the lazy dog while my mother bakes a big apple pie, "
        "and we watch the boats move slowly across the open water")
FPS = 25.0


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    pytest.importorskip("bpy", reason="rendering needs the bpy wheel")
    pytest.importorskip("mediapipe", reason="the 'video' extra")
    pytest.importorskip("torch", reason="the shipped speech model needs torch")
    from spoken_head_fixtures import render_spoken_head

    from lattice_talk.core.video.track import track_video

    video, _, utterance = render_spoken_head(TEXT, tmp_path_factory.mktemp("spoken"), FPS)
    return track_video(video, face_crops=False), utterance


def predicted_opening(audio, sample_rate, folder):
    """The shipped speech model's mouth opening for ``audio``, at FPS, as generate --video computes it."""
    import soundfile

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.motion.fusion import predicted_mouth_opening
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    wav = folder / "sound.wav"
    soundfile.write(wav, audio, sample_rate)
    settings = GenerateSettings(fps=FPS, blinks=False, head_motion=0.0)
    take = run_sync(SpeechPipeline(threads=1), GenerateRequest(audio_path=wav, head=create("default"), settings=settings))
    return predicted_mouth_opening(take.expression, take.expression_names, take.jaw[:, 0])


@pytest.mark.blender
def test_known_shifts_of_a_rendered_speaker_are_recovered_or_declined_never_wrong(spoken, tmp_path):
    from lattice_talk.core.motion.fusion import video_mouth_opening
    from lattice_talk.core.real_av.offset_eval import shifted_sound

    track, utterance = spoken
    opening = video_mouth_opening(track)
    outcomes = {}
    for shift in (0, 3, -3, 7, -7):
        audio = shifted_sound(utterance.audio, utterance.sample_rate, FPS, shift)
        estimate = estimate_offset(opening, predicted_opening(audio, utterance.sample_rate, tmp_path), FPS,
                                   track.confidence > 0.2)
        assert not estimate.reliable or abs(estimate.frames - shift) <= 1, (shift, estimate)
        assert estimate.reliable or estimate.frames == 0
        outcomes[shift] = estimate
    assert sum(e.reliable for e in outcomes.values()) >= 4, outcomes  # a clear speaker is placed, not declined
    assert outcomes[0].agreeing == 2 and outcomes[0].significance >= 4.0
    assert outcomes[7].seconds == pytest.approx(outcomes[7].frames / FPS, abs=0.5 / FPS)


@pytest.mark.blender
def test_a_video_of_other_speech_is_declined(spoken, tmp_path):
    from lattice_talk.core.data import tts
    from lattice_talk.core.motion.fusion import video_mouth_opening

    track, _ = spoken
    other = tts.synthesize("a completely different sentence, spoken about something else entirely, for a while now",
                           "flite", "slt")
    estimate = estimate_offset(video_mouth_opening(track), predicted_opening(other.audio, other.sample_rate, tmp_path),
                               FPS, track.confidence > 0.2)
    assert not estimate.reliable and estimate.frames == 0 and estimate.seconds == 0.0


def test_a_second_peak_nearly_as_high_is_declined():
    """A mouth that repeats every 8 frames fits at 0 and at ±8 frames alike: no lag can be trusted, however high the
    correlation. The same signals without the repetition are placed at their true lag."""
    n = 200
    t = np.arange(n)
    rng = np.random.default_rng(0)
    for periodic in (True, False):
        mouth = 0.5 + 0.5 * np.sin(2 * np.pi * t / 8) if periodic else np.convolve(rng.random(n), np.ones(4) / 4, "same")
        predicted = np.roll(mouth, -2)  # the video is 2 frames late
        estimate = estimate_offset(mouth, predicted, FPS)
        if periodic:
            assert estimate.correlation > 0.9 and estimate.second_peak > 0.7 * estimate.correlation
            assert not estimate.reliable and estimate.frames == 0
        else:
            assert estimate.reliable and estimate.frames == 2


def test_the_offset_is_placed_to_a_fraction_of_a_frame():
    """A mouth 2.4 frames late is placed at 2 whole frames and 2.4 frames in seconds, as the take uses it."""
    rng = np.random.default_rng(3)
    t = np.arange(300)
    mouth = np.convolve(rng.random(300 + 40), np.ones(5) / 5, "same")
    video = np.interp(t + 20, np.arange(len(mouth)), mouth)
    predicted = np.interp(t + 20 + 2.4, np.arange(len(mouth)), mouth)  # the sound's mouth 2.4 frames ahead
    estimate = estimate_offset(video, predicted, FPS)
    assert estimate.reliable and estimate.frames == 2
    assert estimate.seconds * FPS == pytest.approx(2.4, abs=0.2)


def test_the_verdict_does_not_depend_on_the_video_frame_rate():
    """The same 12 s of mouth motion, 2 frames late at 25 fps, seen at 25 and at 50 fps: the same offset in seconds
    and about the same significance (it counts independent stretches of time, not frames)."""
    rng = np.random.default_rng(4)
    slow = np.convolve(rng.random(340), np.ones(5) / 5, "same")
    estimates = {}
    for fps in (25.0, 50.0):
        t = np.arange(int(12 * fps)) * 25.0 / fps + 20  # in 25 fps frames
        video = np.interp(t, np.arange(len(slow)), slow)
        predicted = np.interp(t + 2.0, np.arange(len(slow)), slow)
        noise = np.random.default_rng(5).normal(0, 0.05, 340)
        predicted = predicted + np.interp(t, np.arange(340), noise)  # the same noise in time at either rate
        estimates[fps] = estimate_offset(video, predicted, fps)
    low, high = estimates[25.0], estimates[50.0]
    assert low.reliable and high.reliable and (low.frames, high.frames) == (2, 4)
    assert high.seconds == pytest.approx(low.seconds, abs=0.01)
    assert high.significance == pytest.approx(low.significance, rel=0.1)


def test_weak_evidence_is_declined_on_a_short_clip_and_trusted_on_a_long_one():
    """The same correlation (~0.3) means little over 3 s and a lot over 30 s: the bar is significance, not r."""
    rng = np.random.default_rng(1)
    for frames, trusted in ((75, False), (750, True)):
        mouth = np.convolve(rng.random(frames), np.ones(3) / 3, "same")
        predicted = np.roll(mouth, -3) + 1.1 * np.convolve(rng.random(frames), np.ones(3) / 3, "same")
        estimate = estimate_offset(mouth, predicted, FPS)
        assert estimate.reliable is trusted, (frames, estimate)
        assert estimate.frames == (3 if trusted else 0)


def test_a_peak_at_the_edge_of_the_window_is_declined():
    """The best lag at the search window's edge may be the slope of a peak beyond it: not trusted."""
    rng = np.random.default_rng(2)
    mouth = np.convolve(rng.random(400), np.ones(4) / 4, "same")
    for shift, trusted in ((11, True), (12, False), (14, False)):
        estimate = estimate_offset(mouth, np.roll(mouth, -shift), FPS)  # the window is ±12 frames at 25 fps
        assert estimate.reliable is trusted and estimate.frames == (shift if trusted else 0), (shift, estimate)


def test_no_evidence_means_no_offset():
    rng = np.random.default_rng(0)
    estimate = estimate_offset(np.full(75, 0.2), rng.random(75), FPS)
    assert not estimate.reliable and (estimate.frames, estimate.seconds) == (0, 0.0)


@pytest.mark.blender
def test_generate_with_a_short_video_places_it_and_keeps_audio_only_blinks_out_of_its_fade(spoken, tmp_path):
    """The rendered speaker's video covers the first sentence of a longer sound: generate --video finds it in sync,
    the take fades back to audio-only motion after it, and the audio-only blinks start only after that fade."""
    import soundfile

    from lattice_talk.core.data import tts
    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.motion.fusion import FADE_SECONDS
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    track, utterance = spoken
    more = tts.synthesize("and after that we talked for a long while about the garden, the trees and the birds, until "
                          "the evening came and the light was gone", "flite", "slt")
    wav = tmp_path / "longer.wav"
    soundfile.write(wav, np.concatenate([utterance.audio, more.audio]), utterance.sample_rate)
    video = tmp_path / "head.mp4"
    video.symlink_to(track.source)
    request = GenerateRequest(audio_path=wav, head=create("default"), video_path=video,
                              settings=GenerateSettings(fps=FPS, seed=0))
    clip = run_sync(SpeechPipeline(threads=1), request)
    info = clip.provenance["video"]
    assert info["offset_reliable"] and info["offset_frames"] == 0
    blink = clip.expression[:, clip.expression_names.index("eyeBlinkLeft")]
    video_end = track.n_frames  # take frames = video frames at one fps and no offset
    fade = slice(video_end - int(FADE_SECONDS * FPS), video_end)
    assert blink[fade].max() < 0.3 and blink[:video_end].max() < 0.3  # the rendered head never blinks; nothing leaks in
    assert blink[video_end:].max() > 0.9  # after the video, audio-only blinks


def test_the_offset_report_counts_each_case_against_zero_and_against_the_clips_own_offset():
    """A clip whose own sound is 2 frames off (by its releases): its estimate of −2 is wrong against 0, right against
    its own offset; a clip with no release offset is scored against 0 in both tables."""
    from types import SimpleNamespace

    from lattice_talk.core.real_av.offset_eval import case_outcomes, format_offsets, summarize_offsets

    def case(shift, estimate, reliable, release):
        est = SimpleNamespace(frames=estimate if reliable else 0, reliable=reliable)
        return {"shift": shift, **case_outcomes(est, shift, release)}

    cases = [case(0, -2, True, -2), case(3, 1, True, 1), case(0, 0, True, None), case(3, 0, False, None),
             case(-3, -6, True, None)]
    summary = summarize_offsets(cases)
    zero, own = summary["true offset 0"], summary["own offset (release offset where known, else 0)"]
    assert zero["all"] == {"cases": 5, "right": 1, "declined": 1, "wrong": 3}
    assert own["all"] == {"cases": 5, "right": 3, "declined": 1, "wrong": 1}
    assert zero["shifted"]["cases"] == 3 and zero["+3"]["wrong"] == 1 and own["-3"]["wrong"] == 1
    assert "against the own offset" in format_offsets(summary)


@pytest.mark.blender
def test_a_given_offset_replaces_the_estimate_which_is_still_recorded(spoken, tmp_path):
    """generate --video-offset 0.2: the video is placed 0.2 s late (its last 0.2 s of sound have no video, so the
    video's share falls), while the provenance keeps the estimate's own best lag (0, the render is in sync)."""
    import soundfile

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings, clip_warnings
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    track, utterance = spoken
    wav, video = tmp_path / "line.wav", tmp_path / "head.mp4"
    soundfile.write(wav, utterance.audio, utterance.sample_rate)
    video.symlink_to(track.source)
    pipeline, shares = SpeechPipeline(threads=1), {}
    for given in (None, 0.2):
        request = GenerateRequest(audio_path=wav, head=create("default"), video_path=video,
                                  settings=GenerateSettings(fps=FPS, seed=0, video_offset=given))
        clip = run_sync(pipeline, request)
        info = clip.provenance["video"]
        assert info["offset_given"] is (given is not None) and abs(info["offset_best_frames"]) <= 1
        assert clip_warnings(clip, wav) == []  # trusted or given: nothing to tell
        assert info["offset_seconds"] == pytest.approx(0.2 if given else 0.0, abs=0.5 / FPS)
        shares[given] = info["fused_share"]
    assert shares[0.2] < shares[None] - 0.02


def test_a_declined_offset_is_told_to_the_user_with_the_fix():
    """A take whose video offset was declined (placed at 0 s) warns, naming the video and --video-offset; a given
    offset does not."""
    from clip_fixtures import make_clip

    from lattice_talk.core.heads import create
    from lattice_talk.core.pipeline import clip_warnings

    clip = make_clip(create("default"), seconds=0.5)
    clip.provenance["video"] = {"file": "actor.mp4", "offset_reliable": False, "offset_given": False}
    (warning,) = clip_warnings(clip, "line.wav")
    assert warning.startswith("actor.mp4: its offset") and "--video-offset" in warning
    assert "match best" not in warning  # no best lag recorded: nothing to hint
    clip.provenance["video"].update(offset_best_frames=-3, offset_fps=25.0)
    (warning,) = clip_warnings(clip, "line.wav")
    assert "3 frames early (-0.120 s)" in warning and "check it by eye" in warning
    clip.provenance["video"].update(offset_best_frames=1)
    assert "1 frame late (+0.040 s)" in clip_warnings(clip, "line.wav")[0]
    clip.provenance["video"]["offset_given"] = True
    assert clip_warnings(clip, "line.wav") == []
