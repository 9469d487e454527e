"""Speech with true phoneme timing from three synthesizers: espeak-ng, festival and flite.

Every :class:`~.tts_common.Utterance` holds 16 kHz mono float32 audio and the phonemes the synthesizer itself used to
make it, each with the start and end time *it* placed in the audio — no alignment, no guessing. Each
synthesizer lives in its own module (:mod:`.tts_espeak`, :mod:`.tts_festival`, :mod:`.tts_flite`, where
their timing sources are described); what they share is in :mod:`.tts_common`. This module chooses
between them and builds the voice pool.

All audio is resampled to 16 kHz (:data:`.tts_common.TARGET_RATE`) with :func:`scipy.signal.resample_poly`; phoneme
times are in seconds and do not change. Synthesis is deterministic: the same text, voice, rate and pitch
give the same samples and events. ``rate`` and ``pitch`` are relative to the voice's defaults (1.0):
``rate`` 1.25 speaks 25 % faster on every engine; ``pitch`` is approximate and engine-specific: espeak-ng
sets its 0–100 pitch parameter to ``50·pitch``; flite's slt, awb and kal voices scale their F0 target
mean (measured once per voice); festival's HTS voice (whose ``-fm`` option has no effect in this build)
and flite's rms have no pitch control and reject ``pitch != 1`` (:func:`supports_pitch`).

A missing library or program raises :class:`~..errors.LatticeTalkError` naming the Debian package.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LatticeTalkError
from .tts_common import Utterance, _check_rate_pitch, _clean_text
from .tts_espeak import _Espeak, _synth_espeak, list_espeak_variants
from .tts_festival import _festival_voices, _synth_festival
from .tts_flite import FLITE_PITCH_VOICES, _flite_voices, _synth_flite

__all__ = [
    "ENGINES",
    "VoiceSpec",
    "available_engines",
    "list_voices",
    "supports_pitch",
    "synthesize",
    "voice_pool",
]

ENGINES = ("espeak-ng", "festival", "flite")


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

