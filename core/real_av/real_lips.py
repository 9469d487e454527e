"""What a real talking face did, per video frame: mouth opening, speech frames and p/b/m phones.

Definitions (DESIGN.md, *Real speech is the measure*): the mouth opening is the distance of the inner-lip
midpoints (MediaPipe 13–14) over the eye outer-corner distance (33–263), on the tracker's pose-free points,
so it does not depend on head size, distance or turn; speech frames are frames inside aligned words; the
loudness envelope is the RMS of a 60 ms window at each frame time. Tracks are cached by the video's sha256,
so a folder is tracked once whatever evaluates it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..lip_geometry import OPENING_POINTS, opening_ratio
from ..npz_files import save_npz_atomic
from ..phonemes import BILABIALS, SILENCE, PhonemeEvent
from .manifest import RealClip

LOUDNESS_WINDOW_S = 0.06
MIN_CONFIDENCE = 0.5  # frames the tracker is less sure of are left out of every score
CACHE_FORMAT = "lattice_talk.real_lips/1"
_NON_SPEECH_LABELS = ("sil", "nsn", "spn", "sp")


@dataclass
class RealLips:
    """One clip as the measure sees it; every array is per video frame (time = index / fps)."""

    name: str
    speaker: str
    fps: float
    opening: np.ndarray  # (T,) inner-lip gap / eye-corner distance
    valid: np.ndarray  # (T,) bool: face tracked with confidence ≥ MIN_CONFIDENCE
    speech: np.ndarray  # (T,) bool: inside an aligned word (or a labelled non-silent phone)
    phones: list[PhonemeEvent]  # in video time
    loudness: np.ndarray  # (T,) RMS envelope of the sound, in video time
    audio_path: Path
    audio_start: float  # seconds of video time at which the sound's first sample plays
    transcript: str | None

    @property
    def n_frames(self) -> int:
        return len(self.opening)

    @property
    def bilabials(self) -> list[PhonemeEvent]:
        return [p for p in self.phones if p.phoneme in BILABIALS]


def loudness_envelope(samples: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """RMS of a LOUDNESS_WINDOW_S window centred on each time (seconds of audio time); 0 outside the audio."""
    x = np.asarray(samples, np.float64)
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    half = LOUDNESS_WINDOW_S / 2 * sample_rate
    lo = np.clip(np.round(times * sample_rate - half).astype(np.int64), 0, len(x))
    hi = np.clip(np.round(times * sample_rate + half).astype(np.int64), 0, len(x))
    n = hi - lo
    return np.sqrt(np.divide(sq[hi] - sq[lo], n, out=np.zeros(len(times)), where=n > 0))


def tracked_opening(video: Path, sha256: str, cache_dir: Path | None,
                    track=None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(opening, confidence, fps, audio offset) of a video, from the cache when it has this file's track, else from
    ``track`` when the caller has one (``track_video(video, face_crops=False, min_face_fraction=0.3)``), else by
    tracking it."""
    cache = None if cache_dir is None else Path(cache_dir) / f"{sha256}.lips.npz"
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") == CACHE_FORMAT:
                return data["opening"], data["confidence"], meta["fps"], meta["audio_offset"]
    if track is None:
        from ..video.track import track_video

        track = track_video(video, face_crops=False, min_face_fraction=0.3)
    opening = opening_ratio(track.points_metric[:, list(OPENING_POINTS)]).astype(np.float32)
    result = (opening, track.confidence.astype(np.float32), float(track.fps), float(track.audio_offset))
    if cache is not None:
        meta = {"format": CACHE_FORMAT, "video": video.name, "fps": result[2], "audio_offset": result[3]}
        save_npz_atomic(cache, meta=np.array(json.dumps(meta)), opening=opening, confidence=result[1])
    return result


def _labelled_phones(labels: list[int], index: tuple[str, ...], fps: float) -> list[PhonemeEvent]:
    """Runs of equal per-frame labels → phone events (frame k spans [k, k+1) / fps)."""
    names = [index[i].lower() for i in labels]
    events, start = [], 0
    for k in range(1, len(names) + 1):
        if k == len(names) or names[k] != names[start]:
            name = SILENCE if names[start] in _NON_SPEECH_LABELS else names[start]
            events.append(PhonemeEvent(name, start / fps, k / fps))
            start = k
    return events


def aligned_speech(audio, text: str, times: np.ndarray,
                   audio_start: float = 0.0) -> tuple[list[PhonemeEvent], np.ndarray]:
    """``text`` forced-aligned to ``audio`` (a :class:`~lattice_talk.core.audio.Audio` whose first sample plays at
    ``audio_start`` s): its phones in that time, from 0 on, and the speech frames at ``times`` (inside a word)."""
    from ..speech.alignment import align_transcript, phone_events

    words, _ = align_transcript(audio.samples, audio.sample_rate, text)  # words it cannot place are not speech
    phones = [PhonemeEvent(p.phoneme, p.start + audio_start, p.end + audio_start)
              for p in phone_events(words) if p.start + audio_start >= 0]
    speech = np.zeros(len(times), bool)
    for w in words:
        speech |= (times >= w.start + audio_start) & (times < w.end + audio_start)
    return phones, speech


def load_real_lips(clip: RealClip, folder: str | Path, cache_dir: str | Path | None = None, track=None) -> RealLips:
    """Track (or read from the cache, or take the caller's ``track``: :func:`tracked_opening`) one manifest clip and
    place its phones and loudness on its frames."""
    from ..audio import load_audio

    folder = Path(folder)
    video = folder / clip.video
    opening, confidence, fps, audio_offset = tracked_opening(video, clip.sha256, cache_dir, track)
    audio_path = folder / clip.audio if clip.audio else video
    audio_start = 0.0 if clip.audio else audio_offset
    audio = load_audio(audio_path)
    n = len(opening)
    times = np.arange(n) / fps
    speech = np.zeros(n, bool)
    if clip.phone_labels:
        labels = json.loads((folder / clip.phone_labels).read_text())[:n]
        phones = _labelled_phones(labels, clip.phone_index, fps)
        for p in phones:
            if p.phoneme != SILENCE:
                speech |= (times >= p.start) & (times < p.end)
    else:
        phones, speech = aligned_speech(audio, clip.transcript or "", times, audio_start)
    loudness = loudness_envelope(audio.samples, audio.sample_rate, times - audio_start)
    valid = (confidence >= MIN_CONFIDENCE) & np.isfinite(opening)
    return RealLips(clip.name, clip.speaker, fps, opening.astype(np.float64), valid, speech, phones, loudness,
                    audio_path, audio_start, clip.transcript)
