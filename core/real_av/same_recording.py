"""Two files of one recording — cut, cropped and re-encoded by different hands — need not keep the same sync
between sound and picture. How far apart they are is read here without any model: where the one file's sound lies
in the other's (the waveforms' cross-correlation, to a sample) and where its picture lies (every tracked face point
and the head's rotation, correlated at fractional lags). The difference of the two lags is the difference of the
files' own offsets, so a file whose own offset the lips' releases cannot give (:mod:`.lip_release`) can take its
twin's (:mod:`.own_offset`, which all three real-clip measures read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError

MIN_SOUND_R = 0.9  # the two sounds correlate at least this well where they overlap, or they are not one recording
MIN_PICTURE_R = 0.8  # ... and the two tracked faces' motion (two trackings of one face differ by their noise)
MIN_OVERLAP = 0.5  # of the shorter file, at least
MAX_DIFFERENCE = 1.0  # seconds: pictures placed further from their sounds are a chance match, not one recording
FINE_STEP = 0.05  # frames: the picture's lag is refined to this step around the best whole frame


class NotSameRecording(LatticeTalkError):
    """Two files named as one recording whose sounds or pictures do not match."""


@dataclass(frozen=True)
class RecordingAlignment:
    """Where file ``a`` lies in file ``b``, both on their videos' clocks (seconds)."""

    sound_lag: float  # b's sound at t + sound_lag plays what a's plays at t
    sound_r: float
    picture_lag: float  # b's picture at t + picture_lag shows what a's shows at t
    picture_r: float
    fps_a: float  # the two videos' frame rates
    fps_b: float

    @property
    def offset_difference(self) -> float:
        """b's own offset minus a's, in seconds (an own offset: how late the picture is against its sound)."""
        return self.picture_lag - self.sound_lag


def sound_lag(a: np.ndarray, b: np.ndarray, rate: int) -> tuple[float, float]:
    """(seconds, r): the lag at which ``b`` best repeats ``a`` (b[n + lag] ≈ a[n]) and the two's correlation there."""
    from scipy.signal import correlate, correlation_lags

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lags = correlation_lags(len(b), len(a))
    scores = correlate(b, a, method="fft")
    shortest = MIN_OVERLAP * min(len(a), len(b))
    overlap = np.minimum(len(a), len(b) - lags) - np.maximum(0, -lags)
    scores[overlap < shortest] = -np.inf
    lag = int(lags[int(np.argmax(scores))])
    first = max(0, -lag)
    last = min(len(a), len(b) - lag)
    return lag / rate, float(np.corrcoef(a[first:last], b[first + lag:last + lag])[0, 1])


def _standardized(channels: np.ndarray) -> np.ndarray:
    return (channels - channels.mean(axis=0)) / (channels.std(axis=0) + 1e-12)


def _picture_r(a: np.ndarray, fps_a: float, b: np.ndarray, fps_b: float, lag: float) -> float:
    """The mean per-channel correlation of ``a`` with ``b`` read ``lag`` seconds later (linear between frames)."""
    at = (np.arange(len(a)) / fps_a + lag) * fps_b
    inside = (at >= 0) & (at <= len(b) - 1)
    if inside.sum() < MIN_OVERLAP * min(len(a), len(b) * fps_a / fps_b) or inside.sum() < 3:
        return -np.inf
    lo = np.floor(at[inside]).astype(np.int64)
    hi = np.minimum(lo + 1, len(b) - 1)
    weight = (at[inside] - lo)[:, None]
    return float(np.mean(_standardized(a[inside]) * _standardized((1 - weight) * b[lo] + weight * b[hi])))


def picture_lag(a: np.ndarray, fps_a: float, b: np.ndarray, fps_b: float,
                near: float | None = None) -> tuple[float, float]:
    """(seconds, r): the lag at which the per-frame channels ``b`` (frames × channels at ``fps_b``) best repeat
    ``a``'s, and their mean per-channel correlation there; ``near``: only lags within MAX_DIFFERENCE of it. Whole
    frames of b first, then FINE_STEP around the best."""
    duration_a, duration_b = len(a) / fps_a, len(b) / fps_b
    whole = np.arange(np.floor(-duration_a * fps_b), np.ceil(duration_b * fps_b) + 1) / fps_b
    if near is not None:
        whole = whole[np.abs(whole - near) <= MAX_DIFFERENCE]
    if not len(whole):
        raise NotSameRecording(f"the two pictures cannot overlap within {MAX_DIFFERENCE:g} s of {near:+.2f} s")
    scores = [_picture_r(a, fps_a, b, fps_b, lag) for lag in whole]
    best = whole[int(np.argmax(scores))]
    fine = best + np.arange(-1.0, 1.0 + FINE_STEP / 2, FINE_STEP) / fps_b
    scores = [_picture_r(a, fps_a, b, fps_b, lag) for lag in fine]
    k = int(np.argmax(scores))
    return float(fine[k]), float(scores[k])


def picture_channels(track) -> np.ndarray:
    """A :class:`~lattice_talk.core.video.track.VideoTrack`'s per-frame channels to align by: every point in the
    head's frame (pose removed) and the head's rotation."""
    points = track.points_metric.reshape(len(track.points_metric), -1)
    return np.concatenate([points, track.head_rotation], axis=1).astype(np.float64)


def align_recordings(a: str | Path, b: str | Path, sound_a: str | Path | None = None,
                     sound_b: str | Path | None = None) -> RecordingAlignment:
    """Where video ``a`` lies in video ``b`` (:class:`RecordingAlignment`). Each file's sound is its own sound
    track placed by the container's start times, or ``sound_a`` / ``sound_b`` (a separate file taken to start with
    its video). Raises :class:`NotSameRecording` naming both files when their sounds or pictures do not match."""
    from ..audio import SPEECH_RATE, load_audio
    from ..video.track import track_video

    tracks = [track_video(path, face_crops=False, min_face_fraction=0.3) for path in (a, b)]
    starts = [0.0 if sound else track.audio_offset for sound, track in zip((sound_a, sound_b), tracks)]
    sounds = [load_audio(sound or path).samples for sound, path in zip((sound_a, sound_b), (a, b))]
    lag, sound_r = sound_lag(sounds[0], sounds[1], SPEECH_RATE)
    lag += starts[1] - starts[0]  # on the videos' clocks
    picture, picture_r = picture_lag(picture_channels(tracks[0]), tracks[0].fps,
                                     picture_channels(tracks[1]), tracks[1].fps, near=lag)
    if not (sound_r >= MIN_SOUND_R and picture_r >= MIN_PICTURE_R):  # (NaN for a silent or frozen overlap)
        raise NotSameRecording(f"{a} and {b} are not one recording: their sounds correlate at r {sound_r:.2f} "
                               f"(at least {MIN_SOUND_R} expected), their tracked faces at {picture_r:.2f} within "
                               f"{MAX_DIFFERENCE:g} s of that (at least {MIN_PICTURE_R}); remove 'same_recording' from "
                               "the manifest entry")
    return RecordingAlignment(lag, sound_r, picture, picture_r, tracks[0].fps, tracks[1].fps)
