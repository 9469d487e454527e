"""Scoring a prediction against real lips: speech-frame correlation, p/b/m closure, the speaker's own closures.

Per clip (DESIGN.md, *Real speech is the measure*):
- Pearson r of the predicted and the real mouth opening over speech frames where the face was tracked, with the
  prediction read ``lag`` seconds later than the real face (positive lag = the prediction is late), for lags
  in ±200 ms on a 10 ms grid; the best lag per clip includes chance, so the table also gives one lag shared
  by every clip (the lag with the highest mean r) and lag 0;
- p/b/m closure: the predicted inner-lip gap on the mesh under 1 mm at some frame within the phone ±1 frame;
- the speaker's own closures during speech (real opening under 15 % of the clip's 95th percentile, runs of
  frames): the share the prediction also closes (gap < 1 mm within the run ±1 frame), and the prediction's
  closures during speech where the real lips stay open.
The loudness envelope is scored the same way (it has no mesh, so no closures) as the baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import event_frames, pearson
from ..lip_geometry import CLOSURE_THRESHOLD_MM
from .real_lips import RealLips

LAGS_S = np.round(np.arange(-0.2, 0.2001, 0.01), 3)
REAL_CLOSED_SHARE = 0.15  # of the clip's 95th-percentile opening: the speaker's lips count as closed


@dataclass
class Prediction:
    """A predicted signal on the clip's video frames."""

    opening: np.ndarray  # (T,) mouth opening (any scale: correlation only)
    gap_mm: np.ndarray | None = None  # (T,) inner-lip gap on the mesh, mm (None: no mesh, e.g. loudness)


def lagged_correlation(signal: np.ndarray, lips: RealLips, lag_s: float) -> float:
    """r over the clip's scored frames between ``signal`` read at t + lag and the real opening at t."""
    times = np.arange(lips.n_frames) / lips.fps
    n = min(len(signal), lips.n_frames)
    shifted = np.interp(times + lag_s, times[:n], np.asarray(signal[:n], np.float64), left=np.nan, right=np.nan)
    scored = lips.speech & lips.valid
    return pearson(shifted[scored], lips.opening[scored]).value


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] frame of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def widened(first: int, last: int, n: int) -> slice:
    return slice(max(0, first - 1), min(n, last + 2))


def predicted_closed(gap_mm: np.ndarray, lips: RealLips) -> np.ndarray:
    """(T,) bool on the clip's frames: the predicted inner-lip gap under 1 mm (open past the prediction's end)."""
    n = min(len(gap_mm), lips.n_frames)
    gap = np.full(lips.n_frames, np.inf)
    gap[:n] = gap_mm[:n]
    return gap < CLOSURE_THRESHOLD_MM


def pbm_scores(closed: np.ndarray, lips: RealLips) -> dict:
    """How many of the clip's p/b/m phones the prediction closes (``closed``: :func:`predicted_closed`) within the
    phone ±1 frame, and the start times of those it misses."""
    pbm, pbm_closed, missed = 0, 0, []
    for phone in lips.bilabials:
        frames = event_frames(phone, lips.fps, lips.n_frames)
        if frames is None:
            continue
        pbm += 1
        if closed[widened(int(frames[0]), int(frames[-1]), lips.n_frames)].any():
            pbm_closed += 1
        else:
            missed.append(round(phone.start, 2))
    return {"pbm": pbm, "pbm_closed": pbm_closed, "pbm_missed_at_s": missed}


def closure_scores(gap_mm: np.ndarray, lips: RealLips) -> dict:
    closed = predicted_closed(gap_mm, lips)
    # The speaker's own closures and the prediction's, during speech on tracked frames.
    scored = lips.speech & lips.valid
    threshold = REAL_CLOSED_SHARE * np.percentile(lips.opening[lips.valid], 95)
    real_closed = (lips.opening < threshold) & lips.valid
    own = runs(real_closed & scored)
    own_made = sum(bool(closed[widened(a, b, lips.n_frames)].any()) for a, b in own)
    predicted = runs(closed & scored)
    false = sum(not real_closed[widened(a, b, lips.n_frames)].any() for a, b in predicted)
    return {**pbm_scores(closed, lips), "own_closures": len(own),
            "own_closures_made": own_made, "predicted_closures": len(predicted), "closures_where_open": false}


def score_clip(prediction: Prediction, lips: RealLips) -> dict:
    r = np.array([lagged_correlation(prediction.opening, lips, lag) for lag in LAGS_S])
    best = int(np.nanargmax(r))
    row = {"clip": lips.name, "speaker": lips.speaker, "speech_frames": int((lips.speech & lips.valid).sum()),
           "r_by_lag": r.tolist(), "r_lag0": float(r[np.flatnonzero(LAGS_S == 0)[0]]),
           "best_lag_s": float(LAGS_S[best]), "r_best_lag": float(r[best])}
    if prediction.gap_mm is not None:
        row.update(closure_scores(prediction.gap_mm, lips))
    return row


def summarize(rows: list[dict]) -> dict:
    """One predictor over all clips: the shared lag, mean r at it, at lag 0 and at each clip's best lag, and the
    closure counts summed over clips."""
    r = np.array([row["r_by_lag"] for row in rows])
    mean_by_lag = np.nanmean(r, axis=0)
    shared = int(np.nanargmax(mean_by_lag))
    out = {"clips": len(rows), "shared_lag_s": float(LAGS_S[shared]), "r_shared_lag": float(mean_by_lag[shared]),
           "r_lag0": float(mean_by_lag[np.flatnonzero(LAGS_S == 0)[0]]),
           "r_best_lag": float(np.nanmean([row["r_best_lag"] for row in rows]))}
    if rows and "pbm" in rows[0]:
        total = {k: int(sum(row[k] for row in rows)) for k in
                 ("pbm", "pbm_closed", "own_closures", "own_closures_made", "predicted_closures", "closures_where_open")}
        total["pbm_closure_rate"] = total["pbm_closed"] / total["pbm"] if total["pbm"] else float("nan")
        total["own_closure_recall"] = (total["own_closures_made"] / total["own_closures"]
                                       if total["own_closures"] else float("nan"))
        out.update(total)
    return out
