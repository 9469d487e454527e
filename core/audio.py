"""Speech audio for the generator: decode a file to mono float32 at the model's rate, and check it.

:func:`load_audio` reads WAV (including WAVE_FORMAT_EXTENSIBLE), FLAC, OGG Vorbis and MP3 through
``soundfile`` (libsndfile), averages the channels and resamples with an exact rational polyphase filter.
Every input it cannot use raises one :class:`AudioError` naming the file and the fix. The level is kept
as recorded; :func:`normalise` is a separate step, and :func:`iter_chunks` cuts long audio into
overlapping windows for the speech model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import AudioError
from .validate import input_file, sample_rate

SPEECH_RATE = 16000  # Hz: what every speech model, aligner input and corpus here works at
MIN_SECONDS = 0.1  # shorter than one phoneme: almost certainly the wrong file
SILENCE_PEAK = 1e-4  # about -80 dBFS, under the dither/noise floor of any real recording
CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped (full scale after integer → float decoding)
CLIPPED_WARNING = 0.01  # a share of clipped samples that distorts speech audibly: worth a warning
MAX_PEAK = 1000.0  # +60 dBFS: float files may go over full scale a little, never by this much unless damaged
PEAK_LIMIT = 0.99  # normalise() never lets the peak exceed this

# libsndfile reads none of these containers: their sound track is decoded with PyAV (core.video.decode).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg")

_BLOCK_FRAMES = 1 << 20  # mix down block by block: a long multichannel file is never held whole as float32


@dataclass(eq=False)  # arrays make the generated __eq__ ambiguous
class Audio:
    """Mono float32 audio, its rate and where it came from.

    ``clipped_fraction`` describes the decoded file (all channels, before mixing and resampling), where
    clipping is still visible as samples at full scale; built by hand without it, it is measured on
    ``samples``. Clipping is not an error: callers warn when the fraction is noticeable."""

    samples: np.ndarray  # (N,) float32, nominally in [-1, 1]
    sample_rate: int  # Hz
    source: str = ""  # the path it was loaded from, as given
    sha256: str = ""  # hex digest of the file's bytes, for provenance
    clipped_fraction: float | None = None  # share of decoded samples with |x| >= CLIP_LEVEL

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=np.float32)
        if self.samples.ndim != 1:
            raise AudioError(f"{self.source or 'audio'}: samples must be mono, shape (N,), got {self.samples.shape}")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate <= 0:
            raise AudioError(f"{self.source or 'audio'}: sample_rate must be a positive integer, got {self.sample_rate!r}")
        self.sample_rate = int(self.sample_rate)
        if self.clipped_fraction is None:
            self.clipped_fraction = _clipped_fraction(self.samples)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sample_rate

    @property
    def peak(self) -> float:
        """Largest |sample| (may slightly exceed 1 after resampling a clipped file)."""
        return float(np.max(np.abs(self.samples))) if self.samples.size else 0.0

    @property
    def rms_db(self) -> float:
        """RMS level in dBFS (a full-scale sine is -3 dB); -inf for digital silence."""
        rms = math.sqrt(float(np.mean(np.square(self.samples, dtype=np.float64)))) if self.samples.size else 0.0
        return 20.0 * math.log10(rms) if rms > 0.0 else -math.inf


def load_audio(path: str | os.PathLike[str], target_rate: int = SPEECH_RATE, max_seconds: float = 3600.0) -> Audio:
    """Decode ``path`` to mono float32 at ``target_rate`` Hz.

    Channels are averaged; other rates are resampled with :func:`scipy.signal.resample_poly` at the exact
    ratio ``target_rate / rate``. The level is left as recorded (see :func:`normalise`). A video file
    (VIDEO_SUFFIXES) gives its first sound track, decoded with PyAV. Raises :class:`AudioError` for a
    missing path, a folder, a video without sound, an empty, corrupt or unreadable file, no samples, less
    than ``MIN_SECONDS`` or more than ``max_seconds`` of audio, NaN/inf samples, and silence (peak under
    ``SILENCE_PEAK``)."""
    if not isinstance(target_rate, int) or target_rate <= 0 or not max_seconds > 0:
        raise ValueError(f"target_rate must be a positive integer and max_seconds positive, got {target_rate!r} and {max_seconds!r}")
    path = input_file(path, "audio", "pick a .wav, .flac, .ogg or .mp3 file", AudioError)
    is_video = path.suffix.lower() in VIDEO_SUFFIXES
    soundfile = None if is_video else _import_soundfile()
    try:
        with open(path, "rb") as fh:
            sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise AudioError(f"{path}: cannot read the file ({exc}); check its permissions") from exc
    mono, rate, raw_peak, clipped_fraction = _decode_video(path, max_seconds) if is_video else _decode(soundfile, path, max_seconds)
    if mono.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples; export the recording again")
    seconds = mono.shape[0] / rate
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"{path}: only {seconds * 1000:.0f} ms of audio, at least {MIN_SECONDS:g} s is needed; check it is the right file"
        )
    _check_peak(path, raw_peak)
    if raw_peak < SILENCE_PEAK:
        raise AudioError(
            f"{path}: the file is silent (peak {_dbfs(raw_peak)} dBFS); "
            "check the recording level or that the right file was picked"
        )
    if rate != target_rate:
        from scipy.signal import resample_poly  # scipy is a core dependency; imported here to keep module import light

        gcd = math.gcd(target_rate, rate)
        mono = resample_poly(mono, target_rate // gcd, rate // gcd).astype(np.float32, copy=False)
    return Audio(mono, target_rate, source=str(path), sha256=sha256, clipped_fraction=clipped_fraction)


def check_sound_file(path: str | os.PathLike[str]) -> Path:
    """A take's sound strip: an audio file (or a video with a sound track) whose header says it is audio, checked
    without decoding it all. Raises :class:`AudioError` naming the file otherwise (a text file, an image, …)."""
    path = input_file(path, "sound", "pick a .wav, .flac, .ogg or .mp3 file, or leave Sound empty", AudioError)
    not_sound = (f"{path}: not a sound file Blender can play; pick a .wav, .flac, .ogg or .mp3 file (or a video "
                 "with sound), or leave Sound empty")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            import av
        except ImportError as exc:
            raise AudioError("reading a video's sound needs PyAV: run *Install dependencies* in LatticeTalk's add-on "
                             "preferences, or `pip install av`") from exc
        try:
            with av.open(str(path)) as container:
                if not container.streams.audio:
                    raise AudioError(f"{path}: the video has no sound track; pick the speech as an audio file")
                rate = container.streams.audio[0].rate
        except av.FFmpegError as exc:
            raise AudioError(f"{not_sound} ({exc})") from exc
    else:
        try:
            rate = _import_soundfile().info(str(path)).samplerate
        except (RuntimeError, TypeError) as exc:  # LibsndfileError is a RuntimeError; TypeError: header-less data
            raise AudioError(f"{not_sound} ({exc})") from exc
    sample_rate(int(rate or 0), str(path), AudioError)
    return path


def audio_warnings(audio: Audio) -> list[str]:
    """What is usable but worth telling the user about the audio a take was made from."""
    if audio.clipped_fraction >= CLIPPED_WARNING:
        return [f"{audio.source or 'audio'}: {audio.clipped_fraction:.0%} of the samples are clipped (at full scale); "
                "the mouth follows the distortion — record or export it at a lower level"]
    return []


def normalise(audio: Audio, target_rms_db: float = -20.0) -> Audio:
    """A copy of ``audio`` scaled to ``target_rms_db`` dBFS RMS, or as close as it gets without clipping.

    The gain is limited so the peak stays at or under ``PEAK_LIMIT`` (0.99): speech with loud plosives
    ends up quieter than the target rather than distorted. ``source``, ``sha256`` and
    ``clipped_fraction`` still describe the original file."""
    level, peak = audio.rms_db, audio.peak
    if not math.isfinite(level):
        raise AudioError(f"{audio.source or 'audio'}: is silent; there is no level to normalise")
    # The (1 + 1e-6) margin absorbs float32 rounding of the product, so the peak never lands an ulp above the limit.
    gain = min(10.0 ** ((target_rms_db - level) / 20.0), PEAK_LIMIT / (peak * (1.0 + 1e-6)))
    scaled = (audio.samples.astype(np.float64) * gain).astype(np.float32)
    return dataclasses.replace(audio, samples=scaled)


def iter_chunks(audio: Audio, chunk_seconds: float = 20.0, overlap_seconds: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_sample, samples)`` windows over ``audio`` for models that take bounded input.

    Windows are ``round(chunk_seconds * rate)`` samples long and start every ``chunk - overlap`` samples,
    so neighbours share ``round(overlap_seconds * rate)`` samples that the caller can cross-fade or trim;
    together they cover every sample. The last window ends at the last sample and may be shorter; there
    is always at least one. The windows are views of ``audio.samples`` (do not write to them) and depend
    only on the length and the arguments."""
    chunk = round(chunk_seconds * audio.sample_rate)
    overlap = round(overlap_seconds * audio.sample_rate)
    if chunk < 1 or not 0 <= overlap < chunk:
        raise ValueError(
            f"need chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds, got {chunk_seconds!r}, {overlap_seconds!r}"
        )
    n = audio.samples.shape[0]
    start = 0
    while True:
        yield start, audio.samples[start : start + chunk]
        if start + chunk >= n:
            return
        start += chunk - overlap


def _import_soundfile() -> ModuleType:
    # soundfile is an optional dependency (the "speech" extra): Blender's own Python lacks it until
    # *Install dependencies* has run, and the rest of the add-on must still work there.
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: soundfile is installed but libsndfile is not found
        raise AudioError(
            "reading audio needs the soundfile package: run `pip install soundfile` "
            "(or *Install dependencies* in LatticeTalk's add-on preferences)"
        ) from exc
    return soundfile


def _decode(soundfile: ModuleType, path: Path, max_seconds: float) -> tuple[np.ndarray, int, float, float]:
    """Decode to a mono mix; also return the rate and, over all channels, the peak and clipped share."""
    try:
        with soundfile.SoundFile(path) as fh:
            rate, channels, frames = sample_rate(fh.samplerate, str(path), AudioError), fh.channels, fh.frames
            if frames / rate > max_seconds:
                raise AudioError(
                    f"{path}: {frames / rate:.1f} s of audio, more than the {max_seconds:g} s limit; "
                    "split it or raise the limit (max_seconds)"
                )
            mono = np.empty(frames, dtype=np.float32)
            filled = clipped = 0
            peak = 0.0
            while filled < frames:
                block = fh.read(min(_BLOCK_FRAMES, frames - filled), dtype="float32", always_2d=True)
                if block.shape[0] == 0:  # the header promised more frames than the file holds
                    break
                finite = np.isfinite(block).all(axis=1)
                if not finite.all():
                    at = (filled + int(np.argmin(finite))) / rate
                    raise AudioError(
                        f"{path}: non-finite sample (NaN or inf) at {at:.3f} s; the file is damaged — export it again"
                    )
                magnitude = np.abs(block)
                peak = max(peak, float(magnitude.max()))
                _check_peak(path, peak)  # before mixing: summing channels of such values overflows
                clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
                mono[filled : filled + block.shape[0]] = block.mean(axis=1)
                filled += block.shape[0]
    # LibsndfileError (a RuntimeError) for damaged or non-audio bytes; TypeError for header-less .raw files.
    except (RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: cannot decode audio ({exc}); the file is damaged or not audio — export it again or "
            f"convert it to WAV, e.g. `ffmpeg -i {path.name} -ac 1 -ar 16000 {path.stem}_16k.wav`"
        ) from exc
    return mono[:filled], rate, peak, clipped / max(filled * channels, 1)


def _decode_video(path: Path, max_seconds: float) -> tuple[np.ndarray, int, float, float]:
    """A video's sound track (PyAV, channels averaged) with its rate, peak and clipped share, like :func:`_decode`."""
    from .video.decode import read_audio_track
    from .video.errors import VideoError

    try:
        sound = read_audio_track(path)
    except VideoError as exc:
        raise AudioError(str(exc)) from exc
    if sound is None:
        raise AudioError(f"{path}: the video has no sound track; choose the speech as a separate audio file")
    sample_rate(sound.sample_rate, str(path), AudioError)
    if sound.samples.shape[0] / sound.sample_rate > max_seconds:
        raise AudioError(f"{path}: {sound.samples.shape[0] / sound.sample_rate:.1f} s of audio, more than the "
                         f"{max_seconds:g} s limit; split it or raise the limit (max_seconds)")
    if not np.isfinite(sound.samples).all():
        raise AudioError(f"{path}: non-finite samples (NaN or inf) in the sound track; the file is damaged — export it again")
    magnitude = np.abs(sound.samples)
    return sound.samples, sound.sample_rate, float(magnitude.max(initial=0.0)), _clipped_fraction(sound.samples)


def _check_peak(path: Path, peak: float) -> None:
    if peak > MAX_PEAK:
        raise AudioError(f"{path}: samples reach {peak:.3g} where full scale is 1.0; the file is damaged or not "
                         "audio — export it again")


def _clipped_fraction(samples: np.ndarray) -> float:
    return float(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL)) / samples.size if samples.size else 0.0


def _dbfs(value: float) -> str:
    return f"{20.0 * math.log10(value):.0f}" if value > 0.0 else "-inf"


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """(n_frames,) RMS of the audio in a one-frame window centred on each frame time (index / fps).
    ``n_frames`` defaults to the frames the audio spans; frames past its end are 0."""
    x = np.asarray(audio, np.float64).ravel()
    if n_frames is None:
        n_frames = int(math.ceil(len(x) * fps / sample_rate))
    edges = np.clip(np.round((np.arange(n_frames + 1) - 0.5) * sample_rate / fps).astype(np.int64), 0, len(x))
    sq = np.concatenate([[0.0], np.cumsum(np.nan_to_num(x) ** 2)])
    counts = edges[1:] - edges[:-1]
    sums = sq[edges[1:]] - sq[edges[:-1]]
    return np.sqrt(np.divide(sums, counts, out=np.zeros(n_frames), where=counts > 0))
