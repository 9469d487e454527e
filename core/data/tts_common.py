"""What the synthesizers of :mod:`.tts` share: the :class:`Utterance` they return, covering phoneme
events built from their start or end times, the CMU phone map festival and flite both use, the
subprocess and wave helpers, resampling to :data:`TARGET_RATE` and :func:`median_f0`.

Phone labels are mapped onto the project's ARPAbet inventory (:data:`..phonemes.PHONEME_CLASS`); labels
that reach a map's fallback are counted in ``meta["unmapped"]`` and listed in ``meta["unmapped_labels"]``.
Pauses become ``sil``; the phoneme events are contiguous, sorted, start at 0 and end at the audio's
duration. All audio is resampled to :data:`TARGET_RATE` (16 kHz) with :func:`scipy.signal.resample_poly`;
phoneme times are in seconds and do not change. A missing program raises
:class:`~..errors.LatticeTalkError` naming the Debian package.
"""

from __future__ import annotations

import math
import re
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import SPEECH_RATE
from ..errors import LatticeTalkError
from ..phonemes import PHONEME_CLASS, SILENCE, PhonemeEvent

TARGET_RATE = SPEECH_RATE

_SUBPROCESS_TIMEOUT_S = 120.0
_INSTALL_HINT = {
    "espeak-ng": "apt-get install espeak-ng libespeak-ng1",
    "festival": "apt-get install festival festvox-us-slt-hts",
    "flite": "apt-get install flite",
}



# --------------------------------------------------------------------------------------------------
# Utterance


@dataclass(eq=False)  # arrays make the generated __eq__ ambiguous
class Utterance:
    """Synthetic speech and the phonemes in it, with the times the synthesizer placed them at.

    ``phonemes`` cover the audio: contiguous, sorted, the first starts at 0 and the last ends at
    ``len(audio) / sample_rate``; silence is ``"sil"``. ``meta`` records how it was made (rate, pitch,
    variant, language, the engine's own sample rate, unmapped labels, applied augmentation…)."""

    audio: np.ndarray  # (N,) float32 mono
    sample_rate: int
    phonemes: list[PhonemeEvent]
    text: str
    engine: str
    voice: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.audio = np.asarray(self.audio, dtype=np.float32)
        if self.audio.ndim != 1 or self.audio.size == 0:
            raise ValueError(f"audio must be non-empty mono, shape (N,), got {self.audio.shape}")
        if not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        self.sample_rate = int(self.sample_rate)
        check_coverage(self.phonemes, self.duration)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.audio.shape[0] / self.sample_rate

    @property
    def labels(self) -> list[str]:
        """The phoneme labels in order."""
        return [e.phoneme for e in self.phonemes]


def check_coverage(events: list[PhonemeEvent], duration: float, tol: float = 1e-6) -> None:
    """Raise ``ValueError`` unless ``events`` are contiguous and sorted, start at 0 and end at ``duration``."""
    if not events:
        raise ValueError("an utterance needs at least one phoneme event")
    if abs(events[0].start) > tol:
        raise ValueError(f"the first phoneme starts at {events[0].start}, not 0")
    for a, b in zip(events, events[1:]):
        if abs(a.end - b.start) > tol:
            raise ValueError(f"phonemes are not contiguous: {a} is followed by {b}")
    if abs(events[-1].end - duration) > tol:
        raise ValueError(f"the last phoneme ends at {events[-1].end:.6f} s, the audio at {duration:.6f} s")


def events_from_starts(starts: list[tuple[str, float]], duration: float) -> list[PhonemeEvent]:
    """Contiguous events from ``(phoneme, start_seconds)`` pairs in order; each ends where the next starts.

    Time before the first start and after ``duration`` is handled so the events cover ``[0, duration]``
    exactly: a gap at the start becomes ``sil``, starts are clamped into the audio and made
    non-decreasing, zero-length events are dropped and neighbouring ``sil`` events merged."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration!r}")
    items: list[tuple[str, float]] = [(SILENCE, 0.0)]
    floor = 0.0
    for phoneme, start in starts:
        start = min(max(float(start), floor), duration)
        floor = start
        items.append((phoneme, start))
    bounds = [start for _, start in items[1:]] + [duration]
    events: list[PhonemeEvent] = []
    for (phoneme, start), end in zip(items, bounds):
        if end - start <= 1e-9:
            continue
        if events and events[-1].phoneme == SILENCE and phoneme == SILENCE:
            events[-1] = PhonemeEvent(SILENCE, events[-1].start, end)
            continue
        if events and events[-1].end != start:  # a dropped zero-length event: the previous one runs on
            events[-1] = PhonemeEvent(events[-1].phoneme, events[-1].start, start)
        events.append(PhonemeEvent(phoneme, start, end))
    if events and events[-1].end != duration:
        events[-1] = PhonemeEvent(events[-1].phoneme, events[-1].start, duration)
    return events


def events_from_ends(ends: list[tuple[str, float]], duration: float) -> tuple[list[PhonemeEvent], float]:
    """Contiguous events from ``(phoneme, end_seconds)`` pairs (festival's and flite's format).

    Returns the events and the overrun: how far the last end lies past ``duration`` (positive) or short
    of it (negative). Raises :class:`LatticeTalkError` when a spoken (non-``sil``) phoneme would start
    after the audio ends — then the times do not describe this audio."""
    starts: list[tuple[str, float]] = []
    previous = 0.0
    for phoneme, end in ends:
        if phoneme != SILENCE and previous >= duration - 1e-3:
            raise LatticeTalkError(
                f"phoneme {phoneme!r} starts at {previous:.3f} s, after the audio ends at {duration:.3f} s: "
                "the synthesizer's segment times do not match its wave"
            )
        starts.append((phoneme, previous))
        previous = float(end)
    return events_from_starts(starts, duration), (previous - duration if ends else 0.0)


# --------------------------------------------------------------------------------------------------
# CMU phone labels (festival and flite)

# festival and flite (CMU lexicon, radio phone set) → ARPAbet
CMU_PHONES: dict[str, str] = {
    **{p: p for p in PHONEME_CLASS if p != SILENCE},
    "axr": "er", "el": "l", "em": "m", "en": "n", "nx": "n", "dx": "d", "hv": "hh", "ix": "ih", "ux": "uw",
    "pau": SILENCE, "h#": SILENCE, "brth": SILENCE, "sil": SILENCE, "ssil": SILENCE,
}


def _map_cmu(label: str) -> tuple[str, str]:
    label = label.strip().lower()
    if label in CMU_PHONES:
        return CMU_PHONES[label], "table"
    stripped = re.sub(r"[0-9]+$", "", label)  # stress digits, should any appear
    if stripped in CMU_PHONES:
        return CMU_PHONES[stripped], "stripped"
    return ("ax" if re.match(r"^[aeiou]", label) else "t"), "fallback"


# --------------------------------------------------------------------------------------------------
# Shared helpers


def _clean_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if not cleaned:
        raise ValueError("text is empty")
    return cleaned


def _check_rate_pitch(rate: float, pitch: float) -> tuple[float, float]:
    rate, pitch = float(rate), float(pitch)
    if not (0.3 <= rate <= 3.0 and math.isfinite(rate)):
        raise ValueError(f"rate must lie in [0.3, 3.0] (1.0 = the voice's normal speed), got {rate!r}")
    if not (0.5 <= pitch <= 2.0 and math.isfinite(pitch)):
        raise ValueError(f"pitch must lie in [0.5, 2.0] (1.0 = the voice's normal pitch), got {pitch!r}")
    return rate, pitch


def _to_target_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if rate == TARGET_RATE:
        return samples
    from scipy.signal import resample_poly

    gcd = math.gcd(TARGET_RATE, rate)
    return resample_poly(samples, TARGET_RATE // gcd, rate // gcd).astype(np.float32)


def _read_wav(path: Path, engine: str) -> tuple[np.ndarray, int]:
    """Read the 16-bit PCM RIFF file festival/flite write (stdlib only), as float32 mono."""
    try:
        with wave.open(str(path), "rb") as fh:
            rate, width, channels, frames = fh.getframerate(), fh.getsampwidth(), fh.getnchannels(), fh.getnframes()
            raw = fh.readframes(frames)
    except (OSError, EOFError, wave.Error) as exc:
        raise LatticeTalkError(f"{engine} wrote no readable wave ({exc})") from exc
    if width != 2:
        raise LatticeTalkError(f"{engine} wrote {8 * width}-bit audio; expected 16-bit PCM")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if data.size == 0:
        raise LatticeTalkError(f"{engine} produced no audio")
    return data, rate


def _run(engine: str, argv: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=_SUBPROCESS_TIMEOUT_S, cwd=cwd, check=False
        )
    except FileNotFoundError as exc:
        raise LatticeTalkError(f"{engine} is not installed (`{argv[0]}` not found): run `{_INSTALL_HINT[engine]}`") from exc
    except subprocess.TimeoutExpired as exc:
        raise LatticeTalkError(f"{engine} did not finish within {_SUBPROCESS_TIMEOUT_S:g} s") from exc


def _tail(text: str, n: int = 400) -> str:
    text = (text or "").strip()
    return text[-n:] if text else "(no output)"


def _finish(
    engine: str, voice: str, text: str, audio: np.ndarray, native_rate: int, raw_events: list[tuple[str, float]],
    how: list[tuple[str, str]], meta: dict, starts: bool,
) -> Utterance:
    """Resample, build the covering events and the meta shared by every engine."""
    audio16 = _to_target_rate(audio, native_rate)
    duration = audio16.shape[0] / TARGET_RATE
    if starts:
        events = events_from_starts(raw_events, duration)
    else:
        events, overrun = events_from_ends(raw_events, duration)
        meta["segment_overrun_s"] = round(overrun, 6)
    unmapped = sorted({label for label, h in how if h == "fallback"})
    meta.update(
        engine_sample_rate=int(native_rate),
        unmapped=sum(1 for _, h in how if h == "fallback"),
        unmapped_labels=unmapped,
        approximated_labels=sorted({label for label, h in how if h == "stripped"}),
    )
    return Utterance(audio16, TARGET_RATE, events, text, engine, voice, meta)


def median_f0(samples: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median F0 in Hz over clearly voiced 40 ms frames (normalised autocorrelation peak > 0.5)."""
    x = np.asarray(samples, dtype=np.float64)
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = int(rate / fmax), int(rate / fmin)
    level = np.sqrt(np.mean(x**2)) if x.size else 0.0
    f0s = []
    for start in range(0, x.size - frame, hop):
        seg = x[start : start + frame] - x[start : start + frame].mean()
        energy = float(seg @ seg)
        if energy <= 0 or np.sqrt(energy / frame) < 0.5 * level:
            continue
        ac = np.correlate(seg, seg, mode="full")[frame - 1 :] / energy
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5:
            f0s.append(rate / lag)
    if not f0s:
        raise LatticeTalkError("could not measure the voice's pitch (no voiced frames)")
    return float(np.median(f0s))

