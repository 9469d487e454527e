"""A model-free check of a clip's own audio/video sync: where the lips part at bilabial releases.

A /p/, /b/ or /m/ followed by a vowel ends where the lips part — the burst (or the nasal's release) *is* that
parting — so the aligner's phone end in the sound and the moment the tracked mouth is half open again in the
picture mark one physical event. Their difference, in frames, is how late the picture is against its sound at that
release; the centre of a clip's agreeing releases (below) is the clip's own offset. Neither the speech model nor the offset
estimate (``core.motion.fusion.estimate_offset``) enters it, so `video eval-offset` can tell an estimate that found a
file's real offset from one that went wrong.

Most releases of a clip agree within a frame; the rest lie several frames off, where the window caught the
closure of a neighbouring syllable or the aligner misplaced a boundary. So a clip's offset is the centre of its
densest cluster — the median of the releases within a frame of the release with the most neighbours that near —
and counts only when at least MIN_RELEASES releases and MIN_SHARE of them form that cluster. Calibration: 120 GRID
s1 studio clips (the speech model's training speaker) read -0.2 frames over 75 releases; the held-out GRID s4
sentences 0.0 over 33, while several in-the-wild clips read 2 to 6 frames (the picture ahead of its own sound)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..phonemes import BILABIALS, MID_VOWEL, OPEN_VOWEL, PHONEME_CLASS, ROUNDED_VOWEL, SPREAD_VOWEL
from .manifest import RealClip
from .real_lips import RealLips

WINDOW_S = 0.28  # the lips' closing and opening are looked for this far either side of the acoustic release
CLOSED_SHARE = 0.25  # of the clip's 95th-percentile opening: the lips count as closed under it
MIN_RISE_SHARE = 0.3  # ... and as opened again once they rose by this share of it
CLUSTER_FRAMES = 1.0  # releases this near each other agree
MIN_RELEASES = 3  # in the densest cluster, at least
MIN_SHARE = 0.4  # of all the clip's releases in that cluster, at least
_VOWEL_CLASSES = (OPEN_VOWEL, MID_VOWEL, SPREAD_VOWEL, ROUNDED_VOWEL)


@dataclass(frozen=True)
class ReleaseSync:
    """A clip's release lags: picture minus sound, in video frames (positive: the picture is late)."""

    lags: tuple[float, ...]

    @property
    def cluster(self) -> tuple[float, ...]:
        """The releases within CLUSTER_FRAMES of the release that has the most others that near (ties: the first)."""
        if not self.lags:
            return ()
        lags = np.asarray(self.lags)
        near = np.abs(lags[:, None] - lags[None, :]) <= CLUSTER_FRAMES
        return tuple(lags[near[int(np.argmax(near.sum(axis=1)))]])

    @property
    def median(self) -> float | None:
        """The median of the densest cluster."""
        return float(np.median(self.cluster)) if self.lags else None

    @property
    def frames(self) -> int | None:
        """The clip's own offset in whole frames, or None where too few releases agree on it."""
        support = len(self.cluster)
        if support < MIN_RELEASES or support < MIN_SHARE * len(self.lags):
            return None
        return int(round(self.median))

    @property
    def offset(self) -> float:
        """The clip's own offset to a fraction of a frame (the median), or 0 where too few releases agree on one."""
        return 0.0 if self.frames is None else self.median


def _release_frame(opening: np.ndarray, first: int, p95: float) -> float | None:
    """The fractional frame at which ``opening`` (a window starting at frame ``first``) is half way from its closed
    minimum back up to the largest opening after it, or None when the lips never closed or never opened again."""
    low = int(np.argmin(opening))
    closed, opened = opening[low], opening[low:].max()
    if closed > CLOSED_SHARE * p95 or opened - closed < MIN_RISE_SHARE * p95:
        return None
    half = closed + 0.5 * (opened - closed)
    k = low + int(np.argmax(opening[low:] >= half)) - 1  # the last frame under half way
    return first + k + (half - opening[k]) / (opening[k + 1] - opening[k])


def release_sync(lips: RealLips) -> ReleaseSync:
    """The lag of every bilabial release of ``lips`` whose window lies on tracked frames."""
    valid = lips.valid & np.isfinite(lips.opening)
    if not valid.any():
        return ReleaseSync(())
    p95 = float(np.percentile(lips.opening[valid], 95))
    reach = int(np.ceil(WINDOW_S * lips.fps))
    lags = []
    for phone, following in zip(lips.phones, lips.phones[1:]):
        if phone.phoneme not in BILABIALS or PHONEME_CLASS[following.phoneme] not in _VOWEL_CLASSES:
            continue
        sound = phone.end * lips.fps  # frame k is at time k / fps
        first, last = int(np.floor(sound)) - reach, int(np.ceil(sound)) + reach
        if first < 0 or last >= lips.n_frames or not valid[first:last + 1].all():
            continue
        picture = _release_frame(lips.opening[first:last + 1], first, p95)
        if picture is not None:
            lags.append(round(picture - sound, 3))
    return ReleaseSync(tuple(lags))


def picture_on_sound_clock(lips: RealLips, offset_frames: float) -> RealLips:
    """``lips`` with its picture (opening, valid) read ``offset_frames`` later, so that frame t shows what the sound
    plays at t: the picture of a file whose picture is late by that much. Its phones, speech frames and loudness come
    from the sound and stay; frames whose picture lies outside the video become invalid."""
    frames = np.arange(lips.n_frames)
    at = frames + offset_frames
    inside = (at >= 0) & (at <= lips.n_frames - 1)
    lo = np.clip(np.floor(at).astype(np.int64), 0, lips.n_frames - 1)
    hi = np.clip(lo + 1, 0, lips.n_frames - 1)
    valid = inside & lips.valid[lo] & (lips.valid[hi] | (at == lo))
    opening = np.interp(at, frames, np.where(lips.valid, lips.opening, 0.0))
    return replace(lips, opening=np.where(valid, opening, np.nan), valid=valid)


def clip_release_sync(clip: RealClip, folder, cache_dir=None, track=None) -> ReleaseSync:
    """A manifest clip's release lags with its own sound, or none where it has no words or phones to place them by
    (``track``: the clip already tracked, :func:`~.real_lips.tracked_opening`)."""
    from ..speech.alignment import AlignmentError
    from .real_lips import load_real_lips

    if not (clip.transcript or clip.phone_labels):
        return ReleaseSync(())
    try:
        return release_sync(load_real_lips(clip, folder, cache_dir, track))
    except AlignmentError:
        return ReleaseSync(())
