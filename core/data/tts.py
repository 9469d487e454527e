"""Speech with true phoneme timing from three synthesizers: espeak-ng, festival and flite.

Every :class:`Utterance` holds 16 kHz mono float32 audio and the phonemes the synthesizer itself used to
make it, each with the start and end time *it* placed in the audio — no alignment, no guessing:

- **espeak-ng**, through its C library (``libespeak-ng.so.1``) with ctypes; the CLI cannot do this.
  Initialised with ``espeakINITIALIZE_PHONEME_EVENTS`` it reports a phoneme event per phoneme
  (``espeak_EVENT.sample``, at its own 22,050 Hz), but places it *after* the phoneme's pre-pause: a stop's
  event sits at the burst, 30–50 ms after its closure began, which is exactly when the lips of a p/b
  open. espeak-ng's output hooks (``espeak_ng_SetOutputHooks``) are called once per generated sample
  and once where each phoneme's synthesis begins, before its pre-pause; :func:`espeak_phoneme_starts`
  combines the two reports (see there). Measured on the sentence list: the level drops within 5 ms of
  a vowel→stop boundary placed this way, against 45 ms early with the events alone. The library keeps
  state between calls (its pitch-flutter phase), so every call loads, initialises, terminates and
  unloads it under one lock: each utterance is as deterministic as the first call of a new process.
- **festival** with the HTS voice ``cmu_us_slt_arctic_hts`` (and ``kal_diphone`` where installed): the
  HTS engine generates each phone's duration and festival writes those back to the utterance, so
  ``utt.save.segs`` gives the phone end times of the generated wave (5 ms frames). Rate goes through
  the engine's ``-r`` option (``Duration_Stretch`` does nothing to HTS voices).
- **flite** with its statistical-parametric (clustergen) voices ``slt``, ``awb`` and ``rms``, and the
  diphone voices ``kal``/``kal16``: ``-psdur`` prints every segment with its end time, the times the
  waveform generator was driven by. Diphone waves stop at the last pitch mark, a little inside the
  final pause; that pause is cut to the audio's end. ``awb_time`` (a limited-domain voice that can only
  say the time) is left out.

Phone labels are mapped onto the project's ARPAbet inventory (:data:`..phonemes.PHONEME_CLASS`). espeak's
mnemonics for English have an explicit table that covers everything it emits for the sentence list;
other languages use a shared table, then the label stripped of length/variant marks, then a fallback
(vowel-like → ``ax``, otherwise ``t``); labels that reach the fallback are counted in
``meta["unmapped"]`` and listed in ``meta["unmapped_labels"]``. Pauses become ``sil``; the phoneme
events are contiguous, sorted, start at 0 and end at the audio's duration.

All audio is resampled to :data:`TARGET_RATE` (16 kHz) with :func:`scipy.signal.resample_poly`; phoneme
times are in seconds and do not change. Synthesis is deterministic: the same text, voice, rate and pitch
give the same samples and events. ``rate`` and ``pitch`` are relative to the voice's defaults (1.0):
``rate`` 1.25 speaks 25 % faster on every engine; ``pitch`` is approximate and engine-specific: espeak-ng
sets its 0–100 pitch parameter to ``50·pitch``; flite's slt, awb and kal voices scale their F0 target
mean (measured once per voice); festival's HTS voice (whose ``-fm`` option has no effect in this build)
and flite's rms have no pitch control and reject ``pitch != 1`` (:func:`supports_pitch`).

A missing library or program raises :class:`~..errors.LatticeTalkError` naming the Debian package.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import ctypes.util
import functools
import math
import re
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from ..phonemes import PHONEME_CLASS, SILENCE, PhonemeEvent
from .sentences import SENTENCES, SENTENCES_BY_LANGUAGE, split_sentences

__all__ = [
    "ENGINES",
    "SENTENCES",
    "SENTENCES_BY_LANGUAGE",
    "TARGET_RATE",
    "Utterance",
    "VoiceSpec",
    "available_engines",
    "check_coverage",
    "events_from_ends",
    "events_from_starts",
    "list_espeak_variants",
    "list_voices",
    "espeak_phoneme_starts",
    "map_espeak_phoneme",
    "median_f0",
    "split_sentences",
    "supports_pitch",
    "synthesize",
    "voice_pool",
]

TARGET_RATE = 16000
ENGINES = ("espeak-ng", "festival", "flite")

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
# Phone label maps

# espeak-ng's English mnemonics (phsource/ph_english*) → ARPAbet. Every label espeak-ng 1.51 emits for
# SENTENCES with the English voices is here.
ESPEAK_EN: dict[str, str] = {
    # consonants
    "p": "p", "b": "b", "m": "m", "f": "f", "v": "v", "T": "th", "D": "dh",
    "t": "t", "d": "d", "n": "n", "l": "l", "s": "s", "z": "z",
    "t#": "t", "t2": "t", "t[": "t", "d#": "d", "d2": "d", "n-": "n", "l-": "l", "@L": "l", "l/": "l", "l#": "l",
    "S": "sh", "Z": "zh", "tS": "ch", "dZ": "jh",
    "k": "k", "g": "g", "N": "ng", "x": "k",
    "r": "r", "r-": "r", "*": "r", "w": "w", "w#": "w", "W": "w", "j": "y", ";": "y", "h": "hh", "?": "t",
    # vowels
    "a": "ae", "aa": "ae", "a#": "ax", "A:": "aa", "A@": "aa", "A": "aa", "0": "aa", "0#": "aa",
    "O:": "ao", "O@": "ao", "O": "ao", "O2": "ao", "o@": "ao",
    "V": "ah", "VR": "ah",
    "E": "eh", "e@": "eh", "e": "eh", "eI": "ey",
    "3:": "er", "3": "er",
    "@": "ax", "@-": "ax", "@2": "ax", "@5": "ax",
    "I": "ih", "I#": "ih", "I2": "ih", "IR": "ih",
    "i": "iy", "i:": "iy", "i@": "iy", "i@3": "iy",
    "u:": "uw", "u": "uw", "U": "uh", "U@": "uh",
    "oU": "ow", "o": "ow", "OI": "oy",
    "aI": "ay", "aI@": "ay", "aI2": "ay", "aI3": "ay", "aU": "aw", "aU@": "aw",
}

# Other languages share most mnemonics; the letter vowels are continental ("a" is open, "e" close-mid).
ESPEAK_SHARED: dict[str, str] = {
    **ESPEAK_EN,
    "a": "aa", "a:": "aa", "a-": "aa", "A~": "aa", "&": "ae",
    "e": "ey", "e:": "ey", "e-": "eh", "E:": "eh", "E~": "eh", "E2": "eh",
    "i": "iy", "i.": "iy", "I": "ih",
    "o": "ow", "o:": "ow", "O~": "ao",
    "u": "uw", "u:": "uw", "U": "uh",
    "y": "uw", "y:": "uw", "y-": "uw", "Y": "uh", "Y:": "uh", "2": "uh", "2:": "uh", "9": "uh", "W": "uh",
    "W~": "uh", "8": "ax", "@-": "ax",
    "OY": "oy", "aU": "aw", "aI": "ay",
    "R": "r", "r": "r", "**": "r", "R2": "r",
    "B": "b", "D": "dh", "Q": "g", "G": "g", "T": "th",
    "C": "hh", "x": "k", "X": "k", "h": "hh",
    "J": "n", "n^": "n", "l^": "l", "L": "l",
    "pF": "p", "ts": "t", "dz": "d", "ts.h": "ch", "z2": "z", "s2": "s", "tS;": "ch",
}

_ESPEAK_PAUSES = frozenset({"_", "_:", "_!", "_|", "_;", "_^", "_::", "_!!", "_^_", "__"})
_STRIP = re.compile(r"[:#\-~.^;!'\[\]/0-9]+$")
_VOWEL_START = re.compile(r"^[aeiouyAEIOUVY@0-9&W]")

# festival and flite (CMU lexicon, radio phone set) → ARPAbet
CMU_PHONES: dict[str, str] = {
    **{p: p for p in PHONEME_CLASS if p != SILENCE},
    "axr": "er", "el": "l", "em": "m", "en": "n", "nx": "n", "dx": "d", "hv": "hh", "ix": "ih", "ux": "uw",
    "pau": SILENCE, "h#": SILENCE, "brth": SILENCE, "sil": SILENCE, "ssil": SILENCE,
}


def map_espeak_phoneme(label: str, english: bool = True) -> tuple[str, str]:
    """Map one espeak-ng phoneme mnemonic onto the inventory: ``(phoneme, how)``.

    ``how`` is ``"table"`` (a direct entry), ``"stripped"`` (found after removing length/variant marks)
    or ``"fallback"`` (unknown: vowel-like → ``ax``, otherwise ``t``). Pauses map to ``sil``."""
    if label in _ESPEAK_PAUSES or label.startswith("_"):
        return SILENCE, "table"
    table = ESPEAK_EN if english else ESPEAK_SHARED
    if label in table:
        return table[label], "table"
    stripped = _STRIP.sub("", label)
    if stripped and stripped in table:
        return table[stripped], "stripped"
    if stripped and stripped in ESPEAK_SHARED:
        return ESPEAK_SHARED[stripped], "stripped"
    return ("ax" if _VOWEL_START.match(label) else "t"), "fallback"


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


# --------------------------------------------------------------------------------------------------
# espeak-ng through ctypes (speak_lib.h)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
_ESPEAK_DEFAULT_WPM = 175
_ESPEAK_ERRORS = {-1: "EE_INTERNAL_ERROR", 1: "EE_BUFFER_FULL", 2: "EE_NOT_FOUND"}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at the engine's rate, from the start of this synth call
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_PhoHook = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
_SampleHook = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_short)


class _OutputHooks(ctypes.Structure):  # espeak_ng_OUTPUT_HOOKS (espeak_ng.h)
    _fields_ = [("outputPhoSymbol", _PhoHook), ("outputSilence", _SampleHook), ("outputVoiced", _SampleHook), ("outputUnvoiced", _SampleHook)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent))


def _bind(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    if hasattr(lib, "espeak_ng_SetOutputHooks"):
        lib.espeak_ng_SetOutputHooks.argtypes = [ctypes.POINTER(_OutputHooks)]


class _Espeak:
    """espeak-ng's library, used under one process-wide lock, with a fresh state for every call.

    The library keeps state between syntheses in static variables (the pitch "flutter" phase among them),
    so the same text spoken twice in one process comes out a few samples different each time. Every call
    therefore loads the library, initialises it, synthesises, terminates it and unloads it (``dlclose``),
    which costs about 2 ms and makes each call sound exactly like the first call of a new process."""

    _instance: _Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._events: list[tuple[int, str]] = []
        self._n_out = 0
        self._pho: list[tuple[int, str, int]] = []
        # ctypes callbacks, kept referenced for the life of the process
        self._callback = _SynthCallback(self._on_synth)
        self._hooks = _OutputHooks(_PhoHook(self._on_pho), _SampleHook(self._on_sample), _SampleHook(self._on_sample), _SampleHook(self._on_sample))
        self.name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        with self.lock, self._session() as lib:
            data_path = ctypes.c_char_p()
            self.version = (lib.espeak_Info(ctypes.byref(data_path)) or b"").decode(errors="replace")
            self.data_path = (data_path.value or b"").decode(errors="replace")
            self.has_hooks = hasattr(lib, "espeak_ng_SetOutputHooks")
            self._voices = self._list_voices(lib)

    @classmethod
    def get(cls) -> _Espeak:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    @contextlib.contextmanager
    def _session(self) -> Iterator[ctypes.CDLL]:
        """Load and initialise the library; terminate and unload it afterwards. Hold :attr:`lock`."""
        try:
            lib = ctypes.CDLL(self.name)
        except OSError as exc:
            raise LatticeTalkError(
                f"espeak-ng's library ({self.name}) cannot be loaded ({exc}): run `{_INSTALL_HINT['espeak-ng']}`"
            ) from exc
        try:
            _bind(lib)
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
            if rate <= 0:
                raise LatticeTalkError(
                    f"espeak-ng failed to initialise (code {rate}); its data (espeak-ng-data) may be missing: "
                    f"run `{_INSTALL_HINT['espeak-ng']}`"
                )
            self.sample_rate = int(rate)
            try:
                lib.espeak_SetSynthCallback(self._callback)
                if hasattr(lib, "espeak_ng_SetOutputHooks"):
                    lib.espeak_ng_SetOutputHooks(ctypes.byref(self._hooks))
                yield lib
            finally:
                lib.espeak_Terminate()  # stops its thread; then nothing runs library code any more
        finally:
            handle = lib._handle
            del lib
            dlclose = getattr(_ctypes, "dlclose", None)
            if dlclose is not None:
                dlclose(handle)

    def _on_synth(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes callback
        try:
            if n > 0 and wav:
                self._chunks.append(ctypes.string_at(wav, n * 2))
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                event = events[i]
                if event.type == _EVENT_PHONEME:
                    self._events.append((int(event.sample), event.id.string.decode("ascii", errors="replace")))
                i += 1
        except Exception:  # never let a Python exception unwind through C
            return 1
        return 0

    def _on_sample(self, value) -> int:  # noqa: ANN001 - ctypes callback, once per output sample
        self._n_out += 1
        return 0

    def _on_pho(self, code, kind) -> int:  # noqa: ANN001 - ctypes callback, at the start of each phoneme
        self._pho.append((self._n_out, (code or b"").decode("ascii", errors="replace"), int(kind)))
        return 0

    @staticmethod
    def _list_voices(lib: ctypes.CDLL) -> list[str]:
        names: set[str] = set()
        table = lib.espeak_ListVoices(None)
        i = 0
        while table[i]:
            langs = table[i].contents.languages
            if langs:
                raw = ctypes.string_at(langs, 256)
                # (priority byte, name, NUL) repeated; the list ends with a 0 priority byte
                pos = 0
                while pos < len(raw) and raw[pos] != 0:
                    end = raw.find(b"\0", pos + 1)
                    if end < 0:
                        break
                    names.add(raw[pos + 1 : end].decode("ascii", errors="replace"))
                    pos = end + 1
            i += 1
        return sorted(n for n in names if n and n.isprintable() and " " not in n)

    def voices(self) -> list[str]:
        return list(self._voices)

    def synth(self, text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, list[tuple[int, str]], list[tuple[int, str, int]] | None]:
        """Samples (float32 at :attr:`sample_rate`), the phoneme events ``(sample, mnemonic)`` and, where the
        output hooks work, the hooks' phoneme alignment calls ``(sample, mnemonic, type)`` (else ``None``)."""
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        with self.lock, self._session() as lib:
            code = lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if code != 0:
                raise LatticeTalkError(
                    f"espeak-ng has no voice {voice!r} ({_ESPEAK_ERRORS.get(code, code)}); see list_voices('espeak-ng') "
                    "and list_espeak_variants()"
                )
            for param, value in ((_PARAM_RATE, wpm), (_PARAM_PITCH, pitch), (_PARAM_RANGE, 50), (_PARAM_VOLUME, 100), (_PARAM_WORDGAP, 0)):
                lib.espeak_SetParameter(param, value, 0)
            self._chunks, self._events, self._pho, self._n_out = [], [], [], 0
            try:
                code = lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                if code != 0:
                    raise LatticeTalkError(f"espeak-ng failed to synthesise ({_ESPEAK_ERRORS.get(code, code)})")
                lib.espeak_Synchronize()
                pcm = np.frombuffer(b"".join(self._chunks), dtype=np.int16)
                events = list(self._events)
                # The hooks count every sample written; if the count disagrees, their positions cannot be trusted.
                starts = list(self._pho) if self.has_hooks and self._pho and self._n_out == pcm.shape[0] else None
            finally:
                self._chunks, self._events, self._pho, self._n_out = [], [], [], 0
        return pcm.astype(np.float32) / 32768.0, events, starts


@functools.lru_cache(maxsize=1)
def list_espeak_variants() -> list[str]:
    """The voice variants espeak-ng has here (``m1`` … ``f5``, ``klatt``, …), for ``"en-us+f3"``-style names."""
    root = Path(_Espeak.get().data_path) / "voices" / "!v"
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []


_ESPEAK_VOWEL, _ESPEAK_LIQUID, _ESPEAK_NASAL = 2, 3, 8


def espeak_phoneme_starts(events: list[tuple[int, str]], hooks: list[tuple[int, str, int]]) -> list[tuple[int, str]]:
    """Where each of espeak-ng's phonemes starts, in samples, from its two position reports.

    ``events`` are the phoneme events ``(sample, mnemonic)``, one per phoneme. espeak-ng places an event
    *after* the phoneme's pre-pause — for a stop, after the closure silence, at the burst — and, for a
    vowel after a nasal or liquid, after the vowel's onset transition. ``hooks`` are the alignment calls
    ``(sample, mnemonic, type)`` of the output hooks, made before the pre-pause; espeak repeats one each
    time its command queue is full, so the last repeat before the phoneme's event is the real one.

    A phoneme starts at its alignment call, so a stop includes its closure — except a vowel after a nasal
    or liquid: espeak synthesises the consonant and the vowel onset as one sequence, its alignment call
    comes before the consonant's frames, and the event (after the onset, where the level rises) is used."""
    starts: list[tuple[int, str]] = []
    previous_event, previous_type = 0, -1
    k = 0
    for sample, label in events:
        best, kind = None, -1
        j = k
        while j < len(hooks) and hooks[j][0] <= sample:
            if hooks[j][1] == label and hooks[j][0] >= previous_event:
                best, kind, k = hooks[j][0], hooks[j][2], j + 1
            j += 1
        if kind == _ESPEAK_VOWEL and previous_type in (_ESPEAK_LIQUID, _ESPEAK_NASAL):
            best = sample
        starts.append((sample if best is None else best, label))
        previous_event, previous_type = sample, kind
    return starts


def _synth_espeak(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    engine = _Espeak.get()
    wpm = int(min(max(round(_ESPEAK_DEFAULT_WPM * rate), 80), 450))
    pitch_param = int(min(max(round(50 * pitch), 0), 100))
    audio, events, starts = engine.synth(text, voice, wpm, pitch_param)
    if audio.size == 0:
        raise LatticeTalkError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
    base, _, variant = voice.partition("+")
    english = base.lower().startswith("en")
    if starts is not None:
        timing, labelled = "output-hooks", espeak_phoneme_starts(events, starts)
    else:
        timing, labelled = "phoneme-events", events
    raw_events, how = [], []
    for sample, label in labelled:
        if not label or (label.startswith("(") and label.endswith(")")):  # "(en)": a language switch, not a sound
            continue
        phoneme, h = map_espeak_phoneme(label, english=english)
        how.append((label, h))
        raw_events.append((phoneme, sample / engine.sample_rate))
    meta.update(
        language=base, variant=variant, espeak_wpm=wpm, espeak_pitch=pitch_param, espeak_version=engine.version,
        espeak_timing=timing,
    )
    return _finish("espeak-ng", voice, text, audio, engine.sample_rate, raw_events, how, meta, starts=True)


# --------------------------------------------------------------------------------------------------
# festival

FESTIVAL_ALIASES = {"slt": "cmu_us_slt_arctic_hts", "kal": "kal_diphone"}


@functools.lru_cache(maxsize=1)
def _festival_voices() -> tuple[str, ...]:
    with tempfile.TemporaryDirectory(prefix="lt_festival_") as tmp:
        script = Path(tmp) / "voices.scm"
        script.write_text("(print (voice.list))\n")
        proc = _run("festival", ["festival", "-b", str(script)], cwd=tmp)
    match = re.search(r"\(([^()]*)\)", proc.stdout)
    if proc.returncode != 0 or not match:
        raise LatticeTalkError(f"festival could not list its voices: {_tail(proc.stderr or proc.stdout)}")
    return tuple(sorted(match.group(1).split()))


def _scheme_string(value: str) -> str:
    return '"' + value.replace("\\", "").replace('"', "") + '"'


def _synth_festival(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    name = FESTIVAL_ALIASES.get(voice, voice)
    available = _festival_voices()
    if name not in available:
        raise LatticeTalkError(
            f"festival has no voice {voice!r} here (it has {', '.join(available) or 'none'}); "
            f"for the HTS voice run `{_INSTALL_HINT['festival']}`"
        )
    hts = name.endswith("_hts")
    if pitch != 1.0:
        raise ValueError(f"festival voice {name} has no pitch control here (rate only); pitch must be 1.0, got {pitch}")
    with tempfile.TemporaryDirectory(prefix="lt_festival_") as tmp:
        wav, segs, script = Path(tmp) / "out.wav", Path(tmp) / "out.segs", Path(tmp) / "say.scm"
        lines = [f"(voice_{name})"]
        if hts:
            lines.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.6f}))))')
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / rate:.6f})")
        lines += [
            f"(set! lt_utt (Utterance Text {_scheme_string(text)}))",
            "(utt.synth lt_utt)",
            f"(utt.save.wave lt_utt {_scheme_string(str(wav))} 'riff)",
            f"(utt.save.segs lt_utt {_scheme_string(str(segs))})",
        ]
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = _run("festival", ["festival", "-b", str(script)], cwd=tmp)
        if not wav.is_file() or not segs.is_file():
            raise LatticeTalkError(f"festival failed for voice {name}: {_tail(proc.stderr or proc.stdout)}")
        audio, native_rate = _read_wav(wav, "festival")
        seg_text = segs.read_text(encoding="utf-8", errors="replace")
    ends, how = [], []
    body = seg_text.split("#", 1)[1] if "#" in seg_text else seg_text
    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        phoneme, h = _map_cmu(parts[2])
        how.append((parts[2], h))
        ends.append((phoneme, float(parts[0])))
    if not ends:
        raise LatticeTalkError(f"festival wrote no segments for {text!r}")
    meta.update(language="en-us", variant="", festival_voice=name)
    return _finish("festival", name, text, audio, native_rate, ends, how, meta, starts=False)


# --------------------------------------------------------------------------------------------------
# flite

FLITE_EXCLUDED = frozenset({"awb_time"})  # limited domain: it can only say the time
# Voices whose F0 follows int_f0_target_mean (checked: rms ignores it, so it has rate control only).
FLITE_PITCH_VOICES = frozenset({"slt", "awb", "kal", "kal16"})


@functools.lru_cache(maxsize=1)
def _flite_voices() -> tuple[str, ...]:
    proc = _run("flite", ["flite", "-lv"])
    out = proc.stdout.split(":", 1)[-1] if ":" in proc.stdout else proc.stdout
    voices = tuple(sorted(v for v in out.split() if v not in FLITE_EXCLUDED))
    if proc.returncode != 0 or not voices:
        raise LatticeTalkError(f"flite lists no voices: {_tail(proc.stderr or proc.stdout)}; run `{_INSTALL_HINT['flite']}`")
    return voices


def _flite_call(text: str, voice: str, extra: list[str], tmp: str) -> tuple[np.ndarray, int, list[tuple[str, float]], list[tuple[str, str]]]:
    wav = Path(tmp) / "out.wav"
    argv = ["flite", "-voice", voice, *extra, "-psdur", "-t", text, "-o", str(wav)]
    proc = _run("flite", argv, cwd=tmp)
    if proc.returncode != 0 or not wav.is_file():
        raise LatticeTalkError(f"flite failed for voice {voice}: {_tail(proc.stderr or proc.stdout)}")
    audio, native_rate = _read_wav(wav, "flite")
    ends, how = [], []
    for token in proc.stdout.split():
        match = re.fullmatch(r"([A-Za-z#]+):([0-9]*\.?[0-9]+)", token)
        if match:
            phoneme, h = _map_cmu(match.group(1))
            how.append((match.group(1), h))
            ends.append((phoneme, float(match.group(2))))
    if not ends:
        raise LatticeTalkError(f"flite printed no segment times for {text!r} (voice {voice})")
    return audio, native_rate, ends, how


_flite_f0_lock = threading.Lock()
_flite_f0_cache: dict[str, float] = {}


def _flite_default_f0(voice: str) -> float:
    """The voice's median F0 (Hz) on a calibration sentence, to turn ``pitch`` into flite's F0 target mean."""
    with _flite_f0_lock:
        if voice not in _flite_f0_cache:
            with tempfile.TemporaryDirectory(prefix="lt_flite_") as tmp:
                audio, rate, _, _ = _flite_call("Many people move a big blue boat along the river.", voice, [], tmp)
            _flite_f0_cache[voice] = median_f0(audio, rate)
        return _flite_f0_cache[voice]


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


def _synth_flite(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    available = _flite_voices()
    if voice not in available:
        raise LatticeTalkError(f"flite has no voice {voice!r} here (it has {', '.join(available)}); run `{_INSTALL_HINT['flite']}`")
    if pitch != 1.0 and voice not in FLITE_PITCH_VOICES:
        raise ValueError(f"flite voice {voice} has no pitch control (rate only); pitch must be 1.0, got {pitch}")
    extra: list[str] = []
    if rate != 1.0:
        extra += ["--setf", f"duration_stretch={1.0 / rate:.6f}"]
    if pitch != 1.0:
        f0_mean = pitch * _flite_default_f0(voice)
        extra += ["--setf", f"int_f0_target_mean={f0_mean:.3f}"]
        meta["flite_f0_target_mean"] = round(f0_mean, 3)
    with tempfile.TemporaryDirectory(prefix="lt_flite_") as tmp:
        audio, native_rate, ends, how = _flite_call(text, voice, extra, tmp)
    meta.update(language="en-us", variant="")
    return _finish("flite", voice, text, audio, native_rate, ends, how, meta, starts=False)


# --------------------------------------------------------------------------------------------------
# Public API

_SYNTH = {"espeak-ng": _synth_espeak, "festival": _synth_festival, "flite": _synth_flite}


def synthesize(text: str, engine: str, voice: str, rate: float = 1.0, pitch: float = 1.0, seed: int = 0) -> Utterance:
    """Speak ``text`` with ``engine``'s ``voice`` and return the 16 kHz audio with its phoneme timing.

    ``engine`` is ``"espeak-ng"`` (voices such as ``"en-us"``, ``"en-gb-x-rp"``, ``"en-us+f3"``, ``"de"``),
    ``"festival"`` (``"cmu_us_slt_arctic_hts"`` or its alias ``"slt"``) or ``"flite"`` (``"slt"``, ``"awb"``,
    ``"rms"``, ``"kal16"``…). ``rate`` and ``pitch`` are relative to the voice (1.0 = its default).
    Every engine is deterministic; ``seed`` is recorded in ``meta`` for provenance only."""
    if engine not in _SYNTH:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if not isinstance(voice, str) or not voice.strip():
        raise ValueError(f"voice must be a non-empty string, got {voice!r}")
    text = _clean_text(text)
    rate, pitch = _check_rate_pitch(rate, pitch)
    meta = {"rate": rate, "pitch": pitch, "seed": int(seed)}
    return _SYNTH[engine](text, voice.strip(), rate, pitch, meta)


def supports_pitch(engine: str, voice: str) -> bool:
    """Whether ``pitch`` other than 1.0 works for this engine and voice."""
    if engine == "espeak-ng":
        return True
    if engine == "flite":
        return voice in FLITE_PITCH_VOICES
    return False


def list_voices(engine: str) -> list[str]:
    """The voices of ``engine`` usable here (espeak-ng: language voices; add ``+variant`` for variants)."""
    if engine == "espeak-ng":
        return _Espeak.get().voices()
    if engine == "festival":
        return list(_festival_voices())
    if engine == "flite":
        return list(_flite_voices())
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class VoiceSpec:
    """One way of speaking: engine, voice (with any espeak ``+variant``), rate and pitch."""

    engine: str
    voice: str
    rate: float = 1.0
    pitch: float = 1.0
    language: str = "en"

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.voice}@r{self.rate:g}p{self.pitch:g}"

    def synthesize(self, text: str, seed: int = 0) -> Utterance:
        utterance = synthesize(text, self.engine, self.voice, self.rate, self.pitch, seed)
        utterance.meta["voice_spec"] = self.name
        return utterance


ESPEAK_BASES: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"),
    "de": ("de",),
    "fr": ("fr",),
    "es": ("es",),
}
ESPEAK_POOL_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4")
FLITE_POOL_VOICES = ("slt", "awb", "rms", "kal16")
POOL_RATES = (0.8, 1.0, 1.25)
POOL_PITCHES = (0.85, 1.0, 1.15)


def voice_pool(languages: tuple[str, ...] | list[str] = ("en",), engines: tuple[str, ...] = ENGINES) -> list[VoiceSpec]:
    """Many voice × variant × rate × pitch combinations, in a fixed order, limited to what is installed.

    espeak-ng speaks every language in :data:`ESPEAK_BASES` with the variants m1–m7 and f1–f4; festival
    (every voice it has) and flite (slt, awb, rms, kal16) speak English only. Each voice gets every rate
    in :data:`POOL_RATES` × pitch in :data:`POOL_PITCHES`, or the rates alone where it has no pitch
    control. An engine that is not installed contributes nothing."""
    pool: list[VoiceSpec] = []
    grid = [(r, p) for r in POOL_RATES for p in POOL_PITCHES]
    for language in languages:
        if language not in ESPEAK_BASES:
            raise ValueError(f"no voices for language {language!r}; choose from {sorted(ESPEAK_BASES)}")
        if "espeak-ng" in engines:
            try:
                have, variants = set(list_voices("espeak-ng")), set(list_espeak_variants())
            except LatticeTalkError:
                have, variants = set(), set()
            for base in ESPEAK_BASES[language]:
                if base not in have:
                    continue
                for variant in ESPEAK_POOL_VARIANTS:
                    if variant and variant not in variants:
                        continue
                    voice = f"{base}+{variant}" if variant else base
                    pool += [VoiceSpec("espeak-ng", voice, r, p, language) for r, p in grid]
        if language != "en":
            continue
        for engine, voices in (("festival", None), ("flite", FLITE_POOL_VOICES)):
            if engine not in engines:
                continue
            try:
                have = list_voices(engine)
            except LatticeTalkError:
                continue
            for voice in (have if voices is None else [v for v in voices if v in have]):
                pool += [VoiceSpec(engine, voice, r, p, language) for r, p in grid if p == 1.0 or supports_pitch(engine, voice)]
    return pool


def available_engines() -> list[str]:
    """The engines that work here (library or program installed)."""
    found = []
    for engine in ENGINES:
        try:
            if list_voices(engine):
                found.append(engine)
        except LatticeTalkError:
            pass
    return found

