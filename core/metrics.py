"""Lip-sync metrics on MotionTracks: pure numpy functions and one ``evaluate(pred, ref)``.

The tracks hold MediaPipe points in metres at real head scale (see ``motion_file``); every distance is
reported in millimetres. The functions take MotionTracks (lips, upper face and inner-lip pairs are picked
by MediaPipe index) or, where noted, plain ``(T, N, 3)`` arrays in metres.

Alignment: ``evaluate`` needs equal fps. When the frame counts differ by a few frames (a resampled or
padded prediction), the first ``min(T_pred, T_ref)`` frames of each are compared and both counts go into
the result; a larger mismatch (more than ``max(MIN_FRAME_SLACK, FRAME_SLACK_FRACTION × longer)`` frames)
means the files do not belong together and raises ``LatticeTalkError``. Point sets are matched by
MediaPipe index: a metric uses the points of its set that both tracks carry.

Definitions (DESIGN.md, "Metrics we own"):
- lip vertex error (FaceFormer): per frame the max over lip points of the L2 distance pred↔ref, mean over
  frames, mm; the paper-style value is the mean over frames of the per-frame max *squared* distance, mm².
- mouth opening: distance between the inner-lip midpoints 13 and 14; lip gap: the minimum over the inner
  pairs 82–87, 13–14, 312–317 (the mouth is closed when any part of it is).
- bilabial closure: share of p/b/m events with a lip gap under the threshold at some frame inside the event
  (frame time = index / fps; an event shorter than a frame that contains no frame time uses its nearest frame).
- audio-visual offset: the integer lag maximising the normalised cross-correlation; positive = pred lags
  behind ref (``pred[t] ≈ ref[t - lag]``).
- jitter: mean norm of the 2nd (acceleration, mm/frame²) and 3rd (jerk, mm/frame³) differences of lip points.
- FDD (CodeTalker): per upper-face point the std over time of its displacement magnitude from the neutral
  face (the first frame when a track has none), |pred − ref| averaged over points, mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .phonemes import BILABIALS, PhonemeEvent
from .errors import LatticeTalkError
from .mediapipe_points import LIPS, LOWER_LIP_INNER_MID, UPPER_FACE, UPPER_LIP_INNER_MID
from .audio import audio_envelope
from .lip_geometry import CLOSURE_THRESHOLD_MM, MM, lip_gap
from .motion_file import MotionTrack

MIN_FRAME_SLACK = 5  # frame-count mismatch always tolerated …
FRAME_SLACK_FRACTION = 0.05  # … or this share of the longer track, whichever is larger
DEFAULT_MAX_LAG_S = 0.5  # search window of the offset estimate
CONSTANT_STD_MM = 1e-6  # a signal whose std is below this (1 nm) counts as constant
_TIME_EPS = 1e-9

ArrayOrTrack = MotionTrack | np.ndarray


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class LipVertexError:
    mm: float  # mean over frames of the per-frame max L2 distance
    sq_mm2: float  # mean over frames of the per-frame max squared distance (the paper's unit)
    per_frame_mm: np.ndarray = field(repr=False)  # (T,) per-frame max distance


class Correlation(NamedTuple):
    value: float  # Pearson r; 0.0 when undefined
    degenerate: bool  # True when a signal is constant (or fewer than 2 finite frames): r is undefined


@dataclass(frozen=True)
class ClosureResult:
    rate: float  # closed / count; nan when there is no bilabial event
    count: int  # bilabial events evaluated
    closed: int
    missed: list[PhonemeEvent]  # events during which the lips never closed
    skipped: list[PhonemeEvent]  # events after the end of the track (not counted)


@dataclass(frozen=True)
class Jitter:
    accel_mm_per_frame2: float  # mean norm of the second difference
    jerk_mm_per_frame3: float  # mean norm of the third difference


# ------------------------------------------------------------------------------------------ helpers
def _shared_ids(wanted, *tracks: MotionTrack) -> list[int]:
    ids = [int(i) for i in wanted if all(np.any(t.point_ids == i) for t in tracks)]
    if not ids:
        raise LatticeTalkError(f"the motion track(s) carry none of the MediaPipe points {tuple(wanted)[:6]}…")
    return ids


def _points(x: ArrayOrTrack, wanted) -> np.ndarray:
    """(T, N, 3) float64 metres: the wanted points of a track, or an array as given."""
    if isinstance(x, MotionTrack):
        return x.select(_shared_ids(wanted, x)).astype(np.float64)
    arr = np.asarray(x, np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise LatticeTalkError(f"points must be (T, N, 3), got {arr.shape}")
    return arr


def _pair_points(pred: ArrayOrTrack, ref: ArrayOrTrack, wanted) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pred, MotionTrack) and isinstance(ref, MotionTrack):
        ids = _shared_ids(wanted, pred, ref)
        return pred.select(ids).astype(np.float64), ref.select(ids).astype(np.float64)
    p, r = _points(pred, wanted), _points(ref, wanted)
    if p.shape[1:] != r.shape[1:]:
        raise LatticeTalkError(f"pred points {p.shape} and ref points {r.shape} do not match")
    n = min(len(p), len(r))
    return p[:n], r[:n]


def align(pred: MotionTrack, ref: MotionTrack, max_frame_diff: int | None = None) -> tuple[MotionTrack, MotionTrack]:
    """The overlapping frames of two tracks at the same fps (both cut to the shorter length)."""
    if not math.isclose(pred.fps, ref.fps, rel_tol=1e-6):
        raise LatticeTalkError(f"pred is at {pred.fps:g} fps and ref at {ref.fps:g} fps; resample one of them first")
    longer = max(pred.n_frames, ref.n_frames)
    if max_frame_diff is None:
        max_frame_diff = max(MIN_FRAME_SLACK, int(math.ceil(FRAME_SLACK_FRACTION * longer)))
    diff = abs(pred.n_frames - ref.n_frames)
    if diff > max_frame_diff:
        raise LatticeTalkError(f"pred has {pred.n_frames} frames and ref {ref.n_frames}: more than {max_frame_diff} "
                               "apart, so they are not the same utterance")
    n = min(pred.n_frames, ref.n_frames)
    if n < 2:
        raise LatticeTalkError(f"need at least 2 overlapping frames to compare, got {n}")
    return replace(pred, points=pred.points[:n]), replace(ref, points=ref.points[:n])


def pearson(a: np.ndarray, b: np.ndarray) -> Correlation:
    """Pearson r over the frames where both are finite; a constant signal gives (0.0, degenerate=True)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2:
        return Correlation(0.0, True)
    a, b = a - a.mean(), b - b.mean()
    sa, sb = np.sqrt(np.mean(a * a)), np.sqrt(np.mean(b * b))
    if sa <= CONSTANT_STD_MM or sb <= CONSTANT_STD_MM:
        return Correlation(0.0, True)
    return Correlation(float(np.clip(np.mean(a * b) / (sa * sb), -1.0, 1.0)), False)


# ------------------------------------------------------------------------------------------ 1. LVE
def lip_vertex_error(pred_lips: ArrayOrTrack, ref_lips: ArrayOrTrack) -> LipVertexError:
    """FaceFormer lip vertex error of (T, L, 3) lip points in metres (or two tracks: their shared LIPS points)."""
    p, r = _pair_points(pred_lips, ref_lips, LIPS)
    dist_mm = np.linalg.norm(p - r, axis=-1) * MM  # (T, L)
    worst = dist_mm.max(axis=1) if dist_mm.size else np.zeros(len(dist_mm))
    return LipVertexError(mm=float(worst.mean()), sq_mm2=float(np.mean(worst**2)), per_frame_mm=worst)


# ------------------------------------------------------------------------------------------ 2. mouth opening
def mouth_opening(track: MotionTrack) -> np.ndarray:
    """(T,) distance between the inner-lip midpoints 13 and 14, mm."""
    pts = track.select((UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID)).astype(np.float64)
    return np.linalg.norm(pts[:, 0] - pts[:, 1], axis=-1) * MM


def mouth_opening_correlation(pred: MotionTrack, ref: MotionTrack) -> Correlation:
    """Pearson r of the two mouth-opening signals over their overlapping frames (constant → 0, flagged)."""
    a, b = mouth_opening(pred), mouth_opening(ref)
    n = min(len(a), len(b))
    return pearson(a[:n], b[:n])


# ------------------------------------------------------------------------------------------ 3. closure
def event_frames(event: PhonemeEvent, fps: float, n_frames: int) -> np.ndarray | None:
    """Indices of the frames whose time (index / fps) lies in [start, end]; the nearest frame when none does;
    None when the event starts after the track ends (later than half a frame past the last frame)."""
    if event.start > (n_frames - 0.5) / fps + _TIME_EPS:
        return None
    first = max(int(math.ceil(event.start * fps - _TIME_EPS)), 0)
    last = min(int(math.floor(event.end * fps + _TIME_EPS)), n_frames - 1)
    if first <= last:
        return np.arange(first, last + 1)
    # No frame time inside: the interval is shorter than a frame (or overhangs the track's end).
    left, right = math.floor(event.start * fps), math.ceil(event.end * fps)
    nearest = left if event.start - left / fps <= right / fps - event.end else right
    return np.array([min(max(nearest, 0), n_frames - 1)])


def bilabial_closure_rate(track: MotionTrack, phonemes: list[PhonemeEvent] | None = None,
                          threshold_mm: float = CLOSURE_THRESHOLD_MM) -> ClosureResult:
    """Share of p/b/m events (default: the track's own phonemes) with a lip gap under ``threshold_mm`` at some frame."""
    events = [e for e in (track.phonemes if phonemes is None else phonemes) if e.phoneme in BILABIALS]
    gap = lip_gap(track)
    missed, skipped, closed = [], [], 0
    for event in events:
        frames = event_frames(event, track.fps, track.n_frames)
        if frames is None:
            skipped.append(event)
        elif np.any(gap[frames] < threshold_mm):
            closed += 1
        else:
            missed.append(event)
    count = len(events) - len(skipped)
    return ClosureResult(rate=closed / count if count else float("nan"), count=count, closed=closed,
                         missed=missed, skipped=skipped)


# ------------------------------------------------------------------------------------------ 4. A/V offset
def lag_correlations(pred_signal: np.ndarray, ref_signal: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Lags −L…L and the Pearson r of the overlapping parts at each (``pred[t]`` against ``ref[t − lag]``).

    The lag window is capped so that at least half of the shorter signal overlaps at every lag.
    """
    a, b = np.asarray(pred_signal, np.float64).ravel(), np.asarray(ref_signal, np.float64).ravel()
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    max_lag = max(0, min(int(max_lag), n - max(2, (n + 1) // 2)))
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([pearson(a[k:], b[:n - k]).value if k >= 0 else pearson(a[:n + k], b[-k:]).value for k in lags])
    return lags, corr


def av_offset_frames(pred_signal: np.ndarray, ref_signal: np.ndarray, max_lag: int) -> int:
    """Integer lag maximising the normalised cross-correlation; positive = pred lags behind ref.
    Ties (e.g. constant signals) go to the smallest |lag|, so no evidence means 0."""
    lags, corr = lag_correlations(pred_signal, ref_signal, max_lag)
    best = corr.max()
    candidates = lags[corr >= best - 1e-12]
    return int(candidates[np.argmin(np.abs(candidates) * 2 + (candidates < 0))])


def default_max_lag(fps: float) -> int:
    return max(1, int(round(DEFAULT_MAX_LAG_S * fps)))


def mouth_av_offset_frames(pred: MotionTrack, ref: MotionTrack, max_lag: int | None = None) -> int:
    """Offset of pred's mouth opening against ref's, frames (positive = pred late)."""
    return av_offset_frames(mouth_opening(pred), mouth_opening(ref), default_max_lag(ref.fps) if max_lag is None else max_lag)


def audio_av_offset_frames(track: MotionTrack, audio: np.ndarray | None = None, sample_rate: int | None = None,
                           max_lag: int | None = None) -> int:
    """Offset of the track's mouth opening against the audio envelope (default: the track's own audio), frames;
    positive = the mouth lags behind the sound. Mouths lead speech a little by nature, so compare a prediction's
    value with the ground truth's on the same audio rather than with 0."""
    audio = track.audio if audio is None else audio
    if audio is None:
        raise LatticeTalkError("this motion track has no audio to measure the offset against")
    envelope = audio_envelope(audio, sample_rate or track.sample_rate, track.fps, track.n_frames)
    return av_offset_frames(mouth_opening(track), envelope, default_max_lag(track.fps) if max_lag is None else max_lag)


# ------------------------------------------------------------------------------------------ 5. jitter
def jitter(track: ArrayOrTrack) -> Jitter:
    """Mean norm of the 2nd and 3rd temporal differences of the lip points (track, or (T, L, 3) metres); nan if too short."""
    pts = _points(track, LIPS) * MM

    def mean_norm(order: int) -> float:
        if len(pts) <= order:
            return float("nan")
        return float(np.linalg.norm(np.diff(pts, n=order, axis=0), axis=-1).mean())

    return Jitter(mean_norm(2), mean_norm(3))


# ------------------------------------------------------------------------------------------ 6. FDD
def _motion_std_mm(points: np.ndarray, neutral: np.ndarray | None) -> np.ndarray:
    rest = points[0] if neutral is None else neutral
    return (np.linalg.norm(points - rest[None], axis=-1) * MM).std(axis=0)


def upper_face_dynamics_deviation(pred: ArrayOrTrack, ref: ArrayOrTrack, pred_neutral: np.ndarray | None = None,
                                  ref_neutral: np.ndarray | None = None) -> float:
    """CodeTalker's FDD over the shared UPPER_FACE points (or (T, U, 3) arrays with optional (U, 3) neutrals), mm."""
    if isinstance(pred, MotionTrack) and isinstance(ref, MotionTrack):
        ids = _shared_ids(UPPER_FACE, pred, ref)
        cols = lambda t: [t.column(i) for i in ids]  # noqa: E731
        pred_neutral = None if pred.neutral is None else np.asarray(pred.neutral, np.float64)[cols(pred)]
        ref_neutral = None if ref.neutral is None else np.asarray(ref.neutral, np.float64)[cols(ref)]
    p, r = _pair_points(pred, ref, UPPER_FACE)
    sp = _motion_std_mm(p, None if pred_neutral is None else np.asarray(pred_neutral, np.float64))
    sr = _motion_std_mm(r, None if ref_neutral is None else np.asarray(ref_neutral, np.float64))
    return float(np.abs(sp - sr).mean())


# ------------------------------------------------------------------------------------------ 7. evaluate
METRIC_UNITS: dict[str, str] = {
    "lip_vertex_error_mm": "mm",
    "lip_vertex_error_sq_mm2": "mm²",
    "mouth_open_corr": "r",
    "bilabial_closure_rate": "share",
    "bilabial_closure_rate_ref": "share",
    "bilabial_events": "events",
    "av_offset_frames": "frames",
    "av_offset_audio_frames": "frames",
    "av_offset_audio_frames_ref": "frames",
    "jitter_mm_per_frame2": "mm/frame²",
    "jitter_ref_mm_per_frame2": "mm/frame²",
    "jerk_mm_per_frame3": "mm/frame³",
    "jerk_ref_mm_per_frame3": "mm/frame³",
    "fdd_mm": "mm",
    "frames_compared": "frames",
}


def _event_dict(e: PhonemeEvent) -> dict[str, Any]:
    return {"phoneme": e.phoneme, "start": e.start, "end": e.end}


def evaluate(pred: MotionTrack, ref: MotionTrack, threshold_mm: float = CLOSURE_THRESHOLD_MM,
             max_lag: int | None = None) -> dict[str, Any]:
    """All metrics of pred against ref over their overlapping frames; closure uses ``ref.phonemes``.
    Keys carry their unit; values are plain floats/ints/bools/lists (JSON-ready except nan)."""
    n_pred, n_ref = pred.n_frames, ref.n_frames
    pred, ref = align(pred, ref)
    max_lag = default_max_lag(ref.fps) if max_lag is None else max_lag
    lve = lip_vertex_error(pred, ref)
    corr = mouth_opening_correlation(pred, ref)
    closure = bilabial_closure_rate(pred, ref.phonemes, threshold_mm)
    closure_ref = bilabial_closure_rate(ref, ref.phonemes, threshold_mm)
    jit, jit_ref = jitter(pred), jitter(ref)
    has_upper_face = any(np.any(pred.point_ids == i) and np.any(ref.point_ids == i) for i in UPPER_FACE)
    fdd = upper_face_dynamics_deviation(pred, ref) if has_upper_face else float("nan")  # lips-only tracks
    out: dict[str, Any] = {
        "lip_vertex_error_mm": lve.mm,
        "lip_vertex_error_sq_mm2": lve.sq_mm2,
        "mouth_open_corr": corr.value,
        "mouth_open_corr_degenerate": corr.degenerate,
        "bilabial_closure_rate": closure.rate,
        "bilabial_closure_rate_ref": closure_ref.rate,
        "bilabial_events": closure.count,
        "bilabial_missed": [_event_dict(e) for e in closure.missed],
        "closure_threshold_mm": float(threshold_mm),
        "av_offset_frames": mouth_av_offset_frames(pred, ref, max_lag),
        "av_offset_max_lag_frames": int(max_lag),
        "jitter_mm_per_frame2": jit.accel_mm_per_frame2,
        "jitter_ref_mm_per_frame2": jit_ref.accel_mm_per_frame2,
        "jerk_mm_per_frame3": jit.jerk_mm_per_frame3,
        "jerk_ref_mm_per_frame3": jit_ref.jerk_mm_per_frame3,
        "fdd_mm": fdd,
        "fps": float(ref.fps),
        "frames_compared": pred.n_frames,
        "frames_pred": n_pred,
        "frames_ref": n_ref,
    }
    if ref.audio is not None and len(ref.audio):
        out["av_offset_audio_frames"] = audio_av_offset_frames(pred, ref.audio, ref.sample_rate, max_lag)
        out["av_offset_audio_frames_ref"] = audio_av_offset_frames(ref, ref.audio, ref.sample_rate, max_lag)
    return out


def format_table(results: dict[str, Any]) -> str:
    """The scalar metrics of ``evaluate`` as a text table: metric, value, unit."""
    rows = [(k, results[k], u) for k, u in METRIC_UNITS.items() if k in results]
    width = max(len(k) for k, _, _ in rows)
    lines = [f"{'metric':<{width}}  {'value':>10}  unit", "-" * (width + 24)]
    for key, value, unit in rows:
        text = f"{value:d}" if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else f"{value:.4f}"
        if key == "mouth_open_corr" and results.get("mouth_open_corr_degenerate"):
            unit += " (constant signal: undefined)"
        lines.append(f"{key:<{width}}  {text:>10}  {unit}")
    return "\n".join(lines)


def to_json_ready(results: dict[str, Any]) -> dict[str, Any]:
    """nan/inf → None so the dict is strict JSON."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return clean(results)


# ------------------------------------------------------------------------------------------ 8. plot
PLOT_SIZE_IN, PLOT_DPI = (12.0, 7.0), 100


def plot_comparison(pred: MotionTrack, ref: MotionTrack, out_png: str | Path, title: str = "",
                    threshold_mm: float = CLOSURE_THRESHOLD_MM) -> Path:
    """Three panels (audio + phonemes; mouth opening ref vs pred; lip gap with the closure threshold), 1200×700 px."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise LatticeTalkError("the comparison plot needs matplotlib: pip install matplotlib") from exc

    out_png = Path(out_png)
    fig = Figure(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI)
    FigureCanvasAgg(fig)  # Agg, without touching pyplot's global backend
    ax_audio, ax_open, ax_gap = fig.subplots(3, 1, sharex=True)
    t_ref, t_pred = np.arange(ref.n_frames) / ref.fps, np.arange(pred.n_frames) / pred.fps
    bilabials = [e for e in ref.phonemes if e.phoneme in BILABIALS]

    if ref.audio is not None and len(ref.audio):
        x = np.asarray(ref.audio, np.float64).ravel()
        bucket = max(1, len(x) // 4000)  # min/max per bucket: the outline of the waveform
        m = len(x) // bucket * bucket
        if m:
            xb = x[:m].reshape(-1, bucket)
            tb = (np.arange(len(xb)) * bucket + bucket / 2) / ref.sample_rate
            ax_audio.fill_between(tb, xb.min(1), xb.max(1), color="0.3", linewidth=0)
    else:
        ax_audio.text(0.5, 0.5, "no audio", transform=ax_audio.transAxes, ha="center", va="center", color="0.5")
    for e in ref.phonemes:
        is_bilabial = e.phoneme in BILABIALS
        ax_audio.axvspan(e.start, e.end, color="tab:red" if is_bilabial else "tab:blue",
                         alpha=0.30 if is_bilabial else (0.08 if e.phoneme != "sil" else 0.0), linewidth=0)
        ax_audio.text((e.start + e.end) / 2, 0.97, e.phoneme, transform=ax_audio.get_xaxis_transform(), ha="center",
                      va="top", fontsize=6, color="tab:red" if is_bilabial else "0.2", clip_on=True)
    ax_audio.set_ylabel("audio")

    ax_open.plot(t_ref, mouth_opening(ref), color="black", linewidth=1.2, label="ref")
    ax_open.plot(t_pred, mouth_opening(pred), color="tab:orange", linewidth=1.2, label="pred")
    ax_open.set_ylabel("mouth opening 13–14 (mm)")
    ax_open.legend(loc="upper right", fontsize=8)

    for e in bilabials:
        ax_gap.axvspan(e.start, e.end, color="tab:red", alpha=0.2, linewidth=0)
    ax_gap.plot(t_ref, lip_gap(ref), color="black", linewidth=1.2, label="ref")
    ax_gap.plot(t_pred, lip_gap(pred), color="tab:orange", linewidth=1.2, label="pred")
    ax_gap.axhline(threshold_mm, color="tab:red", linestyle="--", linewidth=1, label=f"{threshold_mm:g} mm")
    ax_gap.set_ylabel("lip gap, min inner pair (mm)")
    ax_gap.set_xlabel("time (s)")
    ax_gap.legend(loc="upper right", fontsize=8)
    end = max(t_ref[-1] if len(t_ref) else 0.0, t_pred[-1] if len(t_pred) else 0.0,
              max((e.end for e in ref.phonemes), default=0.0))
    ax_gap.set_xlim(0.0, max(end, 1.0 / ref.fps))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=PLOT_DPI, metadata={"Software": None})
    return out_png
