"""Lip-sync metrics on constructed MotionTracks: exact values for perfect, shifted, displaced, closed and
never-closing mouths, jitter, FDD, the comparison plot and the ``eval`` command."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_OK, main
from lattice_talk.core import lip_geometry, metrics
from lattice_talk.core.audio import audio_envelope
from lattice_talk.core.phonemes import PhonemeEvent
from lattice_talk.core.errors import LatticeTalkError
from lattice_talk.core.heads import create
from lattice_talk.core.mediapipe_points import LIPS, UPPER_FACE
from lattice_talk.core.motion_file import MotionTrack

FPS = 30.0
LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318)  # inner-lip points below the mouth line (pairs 82–87, 13–14, 312–317)


@pytest.fixture(scope="module")
def neutral():
    """The default head's rest face with the inner lips closed exactly (lower point = upper point for the pairs
    82–87, 13–14, 312–317): how far apart the embedded rest lips are depends on the landmark embedding."""
    head = create("default")
    points = np.asarray(head.landmark_points(head.forward().vertices))[0].astype(np.float64)
    ids = np.asarray(head.landmarks.mediapipe_index, np.int64)
    for upper, lower in lip_geometry.INNER_LIP_PAIRS:
        points[col(ids, lower)] = points[col(ids, upper)]
    return points, ids


def smooth_signal(n: int, seed: int = 0) -> np.ndarray:
    """A non-periodic, smooth positive signal (mm): low-pass noise."""
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.standard_normal(n + 20), np.hanning(9), mode="same")[10:10 + n]
    return 4.0 * (x - x.min()) / (x.max() - x.min())


def make_track(neutral, opening_mm, phonemes=(), audio=None, extra=None) -> MotionTrack:
    """The neutral face with the lower inner lip lowered by ``opening_mm`` (T,) per frame; ``extra(points, ids)`` edits more."""
    base, ids = neutral
    opening_mm = np.asarray(opening_mm, np.float64)
    points = np.repeat(base[None], len(opening_mm), axis=0)
    cols = [int(np.flatnonzero(ids == i)[0]) for i in LOWER_INNER]
    points[:, cols, 1] -= opening_mm[:, None] / 1000.0
    if extra is not None:
        extra(points, ids)
    return MotionTrack(fps=FPS, points=points, point_ids=ids, neutral=base, phonemes=list(phonemes), audio=audio)


def col(ids, mediapipe_id):
    return int(np.flatnonzero(ids == mediapipe_id)[0])


# ------------------------------------------------------------------------------------------ perfect / shifted
def test_perfect_prediction(neutral):
    ref = make_track(neutral, smooth_signal(90), phonemes=[PhonemeEvent("m", 0.5, 0.6)])
    pred = make_track(neutral, smooth_signal(90))
    result = metrics.evaluate(pred, ref)
    assert result["lip_vertex_error_mm"] == 0.0
    assert result["lip_vertex_error_sq_mm2"] == 0.0
    assert result["fdd_mm"] == 0.0
    assert result["mouth_open_corr"] == pytest.approx(1.0)
    assert result["mouth_open_corr_degenerate"] is False
    assert result["av_offset_frames"] == 0
    assert result["frames_compared"] == 90


@pytest.mark.parametrize("shift", [3, -3])
def test_shift_gives_offset(neutral, shift):
    s = smooth_signal(120, seed=3)
    ref_signal, pred_signal = s[3:-3], np.roll(s, shift)[3:-3]  # pred[t] = ref[t - shift]
    assert metrics.av_offset_frames(pred_signal, ref_signal, max_lag=10) == shift
    ref, pred = make_track(neutral, ref_signal), make_track(neutral, pred_signal)
    assert metrics.mouth_av_offset_frames(pred, ref, max_lag=10) == shift
    assert metrics.evaluate(pred, ref)["av_offset_frames"] == shift


def test_offset_against_audio_envelope():
    fps, rate, shift = 30.0, 16000, 2
    env = smooth_signal(100, seed=5)
    t = np.arange(int(100 / fps * rate)) / rate
    frame = np.minimum((t * fps + 0.5).astype(int), 99)
    audio = env[frame] * np.sin(2 * np.pi * 220 * t)
    envelope = audio_envelope(audio, rate, fps, 100)
    assert envelope.shape == (100,)
    assert metrics.pearson(envelope, env).value > 0.95
    assert metrics.av_offset_frames(np.roll(env, shift)[5:-5], envelope[5:-5], 8) == shift


def test_constant_signal_correlation_is_zero_and_flagged(neutral):
    ref = make_track(neutral, smooth_signal(60))
    pred = make_track(neutral, np.full(60, 2.0))
    r = metrics.mouth_opening_correlation(pred, ref)
    assert r == (0.0, True)
    assert metrics.pearson([1.0, np.nan, 3.0, 4.0], [2.0, 5.0, 6.0, 8.0]).value == pytest.approx(1.0)
    assert metrics.av_offset_frames(np.ones(40), np.ones(40), 5) == 0


def test_mouth_opening_and_lip_gap_in_mm(neutral):
    opening = np.array([0.0, 0.5, 2.0, 5.0])
    track = make_track(neutral, opening)
    np.testing.assert_allclose(metrics.mouth_opening(track), opening, atol=1e-4)
    np.testing.assert_allclose(lip_geometry.lip_gap(track), opening, atol=1e-4)


# ------------------------------------------------------------------------------------------ closure
BILABIAL_EVENTS = [PhonemeEvent(p, s, s + 0.08) for p, s in (("p", 0.2), ("b", 0.6), ("m", 1.0), ("m", 1.4))]
OTHER_EVENTS = [PhonemeEvent("aa", 0.3, 0.5), PhonemeEvent("s", 0.8, 0.95)]


def opening_closed_during(events, n=60, open_mm=5.0):
    opening = np.full(n, open_mm)
    for e in events:
        frames = np.arange(n)[(np.arange(n) / FPS >= e.start) & (np.arange(n) / FPS <= e.end)]
        opening[frames[len(frames) // 2]] = 0.0  # one closed frame inside the event
    return opening


def test_mouth_that_never_closes(neutral):
    track = make_track(neutral, np.full(60, 5.0), BILABIAL_EVENTS + OTHER_EVENTS)
    assert lip_geometry.lip_gap(track).min() > 4.5
    result = metrics.bilabial_closure_rate(track)
    assert (result.rate, result.count, result.closed) == (0.0, 4, 0)
    assert result.missed == BILABIAL_EVENTS


def test_mouth_that_closes_on_every_bilabial(neutral):
    track = make_track(neutral, opening_closed_during(BILABIAL_EVENTS), BILABIAL_EVENTS + OTHER_EVENTS)
    result = metrics.bilabial_closure_rate(track)
    assert (result.rate, result.count, result.missed) == (1.0, 4, [])


def test_mouth_that_closes_on_half(neutral):
    track = make_track(neutral, opening_closed_during(BILABIAL_EVENTS[::2]), BILABIAL_EVENTS + OTHER_EVENTS)
    result = metrics.bilabial_closure_rate(track)
    assert result.rate == 0.5 and result.missed == BILABIAL_EVENTS[1::2]
    # evaluate scores pred's lips against ref's phonemes
    ref = make_track(neutral, opening_closed_during(BILABIAL_EVENTS), BILABIAL_EVENTS)
    pred = make_track(neutral, opening_closed_during(BILABIAL_EVENTS[::2]))
    out = metrics.evaluate(pred, ref)
    assert (out["bilabial_closure_rate"], out["bilabial_closure_rate_ref"], out["bilabial_events"]) == (0.5, 1.0, 4)
    assert [e["start"] for e in out["bilabial_missed"]] == [0.6, 1.4]


def test_closure_uses_the_minimum_inner_pair(neutral):
    """Only the corner pair 312–317 closes: the 13–14 gap stays open, the lip gap (min) is closed."""
    def close_corner(points, ids):
        points[:, col(ids, 317)] = points[:, col(ids, 312)]

    track = make_track(neutral, np.full(30, 5.0), [PhonemeEvent("b", 0.3, 0.4)], extra=close_corner)
    assert metrics.mouth_opening(track).min() > 4.5
    assert metrics.bilabial_closure_rate(track).rate == 1.0


def test_event_shorter_than_a_frame_uses_the_nearest_frame(neutral):
    opening = np.full(30, 5.0)
    opening[10] = 0.0  # frame 10 is at 0.3333 s
    event = PhonemeEvent("p", 0.335, 0.345)  # between frames 10 and 11, nearer 10
    assert list(metrics.event_frames(event, FPS, 30)) == [10]
    assert metrics.bilabial_closure_rate(make_track(neutral, opening), [event]).rate == 1.0
    late = PhonemeEvent("p", 0.358, 0.364)  # nearer frame 11: open
    assert metrics.bilabial_closure_rate(make_track(neutral, opening), [late]).rate == 0.0
    beyond = PhonemeEvent("m", 2.0, 2.1)  # after the track: skipped, not missed
    result = metrics.bilabial_closure_rate(make_track(neutral, opening), [event, beyond])
    assert (result.count, result.skipped) == (1, [beyond])
    assert np.isnan(metrics.bilabial_closure_rate(make_track(neutral, opening), []).rate)


# ------------------------------------------------------------------------------------------ LVE, jitter, FDD
def test_constant_2mm_displacement_on_one_lip_point(neutral):
    def move(points, ids):
        points[:, col(ids, 61), 2] += 0.002

    ref = make_track(neutral, smooth_signal(50))
    pred = make_track(neutral, smooth_signal(50), extra=move)
    lve = metrics.lip_vertex_error(pred, ref)
    assert lve.mm == pytest.approx(2.0, abs=1e-4)
    assert lve.sq_mm2 == pytest.approx(4.0, abs=1e-3)
    # exact on float64 arrays
    lips = np.zeros((20, len(LIPS), 3))
    moved = lips.copy()
    moved[:, 5, 0] = 0.002
    exact = metrics.lip_vertex_error(moved, lips)
    assert (exact.mm, exact.sq_mm2) == (2.0, 4.0)


def test_lve_is_the_per_frame_max_averaged():
    ref = np.zeros((2, 3, 3))
    pred = ref.copy()
    pred[0, 0, 0], pred[0, 1, 0] = 0.001, 0.003  # frame 0: max 3 mm
    pred[1, 2, 1] = 0.001  # frame 1: max 1 mm
    lve = metrics.lip_vertex_error(pred, ref)
    assert lve.mm == pytest.approx(2.0) and lve.sq_mm2 == pytest.approx(5.0)


def test_jitter_of_linear_motion_is_zero_and_of_noise_positive(neutral):
    t = np.arange(40, dtype=np.float64)
    linear = np.zeros((40, len(LIPS), 3))
    linear[..., 0] = 0.0005 * t[:, None]
    jit = metrics.jitter(linear)
    assert jit.accel_mm_per_frame2 == pytest.approx(0.0, abs=1e-9)
    assert jit.jerk_mm_per_frame3 == pytest.approx(0.0, abs=1e-9)
    track = make_track(neutral, 0.2 * t)  # linear opening in a (float32) track
    assert metrics.jitter(track).accel_mm_per_frame2 < 1e-3
    noisy = linear + np.random.default_rng(0).normal(0, 0.0005, linear.shape)
    jit = metrics.jitter(noisy)
    assert jit.accel_mm_per_frame2 > 0.5 and jit.jerk_mm_per_frame3 > jit.accel_mm_per_frame2


def test_fdd(neutral):
    base, ids = neutral
    brow = [col(ids, i) for i in UPPER_FACE]
    motion = 0.002 * np.sin(np.linspace(0, 6, 80))

    def raise_brows(scale):
        def edit(points, ids):
            points[:, brow, 1] += scale * motion[:, None]
        return edit

    ref = make_track(neutral, smooth_signal(80), extra=raise_brows(1.0))
    assert metrics.upper_face_dynamics_deviation(ref, ref) == 0.0
    still = make_track(neutral, smooth_signal(80))
    expected = (np.abs(motion) * 1000).std()  # every upper-face point moves the same way
    assert metrics.upper_face_dynamics_deviation(still, ref) == pytest.approx(expected, rel=1e-4)
    half = make_track(neutral, smooth_signal(80), extra=raise_brows(0.5))
    assert metrics.upper_face_dynamics_deviation(half, ref) == pytest.approx(expected / 2, rel=1e-4)


# ------------------------------------------------------------------------------------------ alignment
def test_frame_count_mismatch(neutral):
    s = smooth_signal(95)
    ref, pred = make_track(neutral, s[:90]), make_track(neutral, s)
    result = metrics.evaluate(pred, ref)
    assert (result["frames_compared"], result["frames_pred"], result["frames_ref"]) == (90, 95, 90)
    assert result["lip_vertex_error_mm"] == 0.0
    with pytest.raises(LatticeTalkError, match="frames"):
        metrics.evaluate(make_track(neutral, smooth_signal(200)), ref)
    other = make_track(neutral, s[:90])
    other.fps = 25.0
    with pytest.raises(LatticeTalkError, match="fps"):
        metrics.evaluate(other, ref)


# ------------------------------------------------------------------------------------------ plot and CLI
def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def speaking_pair(neutral, seconds=2.0):
    n = int(seconds * FPS)
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    phonemes = [PhonemeEvent("sil", 0.0, 0.1)] + BILABIAL_EVENTS + OTHER_EVENTS
    ref_opening = opening_closed_during(BILABIAL_EVENTS, n, 3.0) * smooth_signal(n) / 4
    ref = make_track(neutral, ref_opening, phonemes, audio)
    pred = make_track(neutral, np.roll(ref_opening, 1))  # one frame late
    return pred, ref


def test_plot_comparison_size(neutral, tmp_path):
    pred, ref = speaking_pair(neutral)
    out = metrics.plot_comparison(pred, ref, tmp_path / "cmp.png", title="test")
    assert png_size(out) == (1200, 700)
    ref.audio = None  # no audio: still a plot
    assert png_size(metrics.plot_comparison(pred, ref, tmp_path / "noaudio.png")) == (1200, 700)


def test_eval_cli_writes_json_and_png(neutral, tmp_path, capsys):
    pred, ref = speaking_pair(neutral)
    pred_path, ref_path = pred.save(tmp_path / "pred.npz"), ref.save(tmp_path / "ref.npz")
    out = tmp_path / "eval"
    assert main(["eval", "--pred", str(pred_path), "--ref", str(ref_path), "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    for name in ("lip_vertex_error_mm", "lip_vertex_error_sq_mm2", "mouth_open_corr", "bilabial_closure_rate",
                 "av_offset_frames", "jitter_mm_per_frame2", "fdd_mm"):
        assert name in printed
    result = json.loads((out / "eval.json").read_text())
    assert result["av_offset_frames"] == 1
    assert "av_offset_audio_frames" in result and result["bilabial_events"] == 4
    assert png_size(out / "eval.png") == (1200, 700)


def test_eval_cli_rejects_a_non_motion_file(neutral, tmp_path, capsys):
    pred, ref = speaking_pair(neutral)
    ref_path = ref.save(tmp_path / "ref.npz")
    text = tmp_path / "notes.npz"
    text.write_text("not a motion file")
    other = tmp_path / "other.npz"
    np.savez(other, points=np.zeros((3, 2, 3)))
    missing = tmp_path / "missing.npz"
    for bad in (text, other, missing):
        assert main(["eval", "--pred", str(bad), "--ref", str(ref_path), "--out", str(tmp_path / "o")]) == EXIT_BAD_INPUT
        assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o" / "eval.json").exists()


def test_lips_only_tracks_in_any_column_order():
    rng = np.random.default_rng(0)
    ids = np.array(LIPS)
    points = rng.normal(0, 0.002, (40, len(ids), 3))
    a = MotionTrack(FPS, points, ids)
    b = MotionTrack(FPS, points[:, ::-1], ids[::-1].copy())  # same motion, columns reversed
    result = metrics.evaluate(a, b)
    assert result["lip_vertex_error_mm"] == 0.0 and result["av_offset_frames"] == 0
    assert np.isnan(result["fdd_mm"]) and metrics.to_json_ready(result)["fdd_mm"] is None
