"""Speech audio: decoding formats and rates, resampling, the shipped real clips (GRID, tests/data/grid_s1) and
their sound written in other containers, every rejected input, clipping report, normalisation and overlapping chunks."""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.audio import CLIP_LEVEL, PEAK_LIMIT, Audio, iter_chunks, load_audio, normalise
from lattice_talk.core.errors import AudioError, LatticeTalkError
from real_media import REAL_CLIPS, TALKING_HEAD

sf = pytest.importorskip("soundfile")

REAL_SECONDS = 131328 / 44100  # each GRID clip's sound track: 131,328 samples at 44.1 kHz (PyAV's count)


def tone(rate: int, seconds: float = 1.0, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, **kwargs) -> Path:
    sf.write(str(path), data, rate, **kwargs)
    return path


def dominant_frequency(audio: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(audio.samples * np.hanning(audio.samples.size)))
    return float(np.fft.rfftfreq(audio.samples.size, 1.0 / audio.sample_rate)[np.argmax(spectrum)])


# ---------------------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("rate", [8000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("pcm16.wav", {"subtype": "PCM_16"}),
        ("float.wav", {"subtype": "FLOAT"}),
        ("a.flac", {}),
        ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}),
        ("a.mp3", {}),
    ],
)
def test_formats_rates_and_layouts_decode_to_mono_16k(tmp_path, name, kwargs, rate, channels):
    mono = tone(rate)
    data = mono if channels == 1 else np.stack([mono, mono], axis=1)
    audio = load_audio(write(tmp_path / name, data, rate, **kwargs))
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(1.0, abs=0.06)  # mp3 pads up to one frame
    assert dominant_frequency(audio) == pytest.approx(440.0, abs=2.0)
    assert audio.rms_db == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.5)  # level kept, lossy codecs included
    assert audio.source == str(tmp_path / name)


@pytest.mark.parametrize("rate, expected_len", [(48000, 16000), (44100, 16000), (8000, 16000), (16000, 16000), (22050, 16000)])
def test_resampling_is_exact_ratio_and_keeps_frequency(tmp_path, rate, expected_len):
    path = write(tmp_path / "t.wav", tone(rate, freq=1000.0), rate, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.samples.shape == (expected_len,)
    assert dominant_frequency(audio) == pytest.approx(1000.0, abs=1.0)  # 1 Hz bins over 1 s
    # Away from the edges the resampled signal is the 1 kHz sine at the new rate, not just its spectrum.
    t = np.arange(expected_len) / 16000
    middle = slice(200, -200)
    np.testing.assert_allclose(audio.samples[middle], 0.5 * np.sin(2 * np.pi * 1000.0 * t)[middle], atol=5e-3)


def test_target_rate_is_honoured(tmp_path):
    audio = load_audio(write(tmp_path / "t.wav", tone(48000, freq=1000.0), 48000), target_rate=24000)
    assert audio.sample_rate == 24000 and audio.samples.shape == (24000,)
    assert dominant_frequency(audio) == pytest.approx(1000.0, abs=1.0)


def test_stereo_is_averaged(tmp_path):
    left, right = tone(16000, freq=300.0, amplitude=0.6), tone(16000, freq=700.0, amplitude=0.2)
    audio = load_audio(write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT"))
    np.testing.assert_allclose(audio.samples, (left + right) / 2, atol=1e-7)


def test_sha256_is_the_hash_of_the_file_bytes(tmp_path):
    path = write(tmp_path / "t.flac", tone(44100), 44100)
    assert load_audio(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def real_sound(clip: Path) -> tuple[np.ndarray, int]:
    """A shipped clip's sound track, mono at its own rate (44.1 kHz)."""
    pytest.importorskip("av")
    from lattice_talk.core.video.decode import read_audio_track

    sound = read_audio_track(clip)
    return sound.samples, sound.sample_rate


def _as_recorded(tmp_path, clip):
    return clip


def _wav_16k_stereo(tmp_path, clip):
    import scipy.signal

    mono, rate = real_sound(clip)
    at_16k = scipy.signal.resample_poly(mono, 160, 441).astype(np.float32)
    return write(tmp_path / "16k.wav", np.stack([at_16k, 0.5 * at_16k], axis=1), 16000, subtype="PCM_16")


def _wav_48k_stereo_float(tmp_path, clip):
    import scipy.signal

    mono, rate = real_sound(clip)
    at_48k = scipy.signal.resample_poly(mono, 160, 147).astype(np.float32)
    return write(tmp_path / "48k.wav", np.stack([0.5 * at_48k, at_48k], axis=1), 48000, subtype="FLOAT")


def _wave_extensible(tmp_path, clip):
    """WAVE_FORMAT_EXTENSIBLE headers (as many recorders write them; the stdlib ``wave`` module cannot read them)."""
    mono, rate = real_sound(clip)
    return write(tmp_path / "wavex.wav", mono, rate, format="WAVEX", subtype="PCM_24")


def _flac(tmp_path, clip):
    mono, rate = real_sound(clip)
    return write(tmp_path / "speech.flac", mono, rate)


@pytest.mark.parametrize("clip", REAL_CLIPS, ids=lambda p: p.stem)
@pytest.mark.parametrize("container", [_as_recorded, _wav_16k_stereo, _wav_48k_stereo_float, _wave_extensible, _flac],
                         ids=lambda f: f.__name__.strip("_"))
def test_real_speech_loads_from_every_container(tmp_path, clip, container):
    pytest.importorskip("av")
    path = container(tmp_path, clip)
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(REAL_SECONDS, abs=1 / 16000 + (0.002 if path.suffix == ".wav" else 0.0))
    if path.suffix != ".mpg":
        info = sf.info(str(path))
        assert audio.duration == pytest.approx(info.frames / info.samplerate, abs=1 / 16000)
        if container is _wave_extensible:
            assert info.format == "WAVEX"
    assert audio.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert -40.0 < audio.rms_db < 0.0 and audio.peak > 0.05  # speech, not silence or noise floor
    assert 0.0 <= audio.clipped_fraction < 0.01
    # Every container holds the same speech: the 16 kHz signal matches the recording's own decode.
    reference = load_audio(clip).samples
    n = min(reference.size, audio.samples.size)
    scale = 0.75 if "stereo" in container.__name__ else 1.0  # the stereo files carry a half-level channel
    assert np.corrcoef(audio.samples[:n], scale * reference[:n])[0, 1] > 0.99


# ---------------------------------------------------------------------------------------------- errors
def _directory(tmp_path):
    path = tmp_path / "take.wav"
    path.mkdir()
    return path


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    return path


def _random_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _truncated_header(tmp_path):
    good = write(tmp_path / "good.wav", tone(16000), 16000)
    path = tmp_path / "truncated.wav"
    path.write_bytes(good.read_bytes()[:20])
    return path


def _text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)
    return path


def _image(tmp_path):
    path = tmp_path / "photo.wav"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300))
    return path


def _raw(tmp_path):
    return write(tmp_path / "headerless.raw", tone(16000), 16000, subtype="PCM_16")


def _nonfinite(value):
    def make(tmp_path):
        data = tone(16000)
        data[8000] = value
        return write(tmp_path / "bad_values.wav", data, 16000, subtype="FLOAT")

    return make


ERROR_CASES = {
    "missing": (lambda p: p / "nowhere.wav", "not found"),
    "directory": (_directory, "is a folder"),
    "empty": (_empty, "empty (0 bytes)"),
    "random bytes": (_random_bytes, "cannot decode"),
    "truncated header": (_truncated_header, "cannot decode"),
    "text renamed .wav": (_text, "cannot decode"),
    "image": (_image, "cannot decode"),
    "headerless raw": (_raw, "cannot decode"),
    "zero samples": (lambda p: write(p / "zero.wav", np.zeros(0, np.float32), 16000), "no audio samples"),
    "too short": (lambda p: write(p / "blip.wav", tone(16000, seconds=0.05), 16000), "at least 0.1 s"),
    "silent": (lambda p: write(p / "silence.flac", np.zeros(16000, np.float32), 16000), "the file is silent"),
    "near silent": (lambda p: write(p / "hiss.wav", tone(16000, amplitude=5e-5), 16000, subtype="FLOAT"), "the file is silent"),
    "nan": (_nonfinite(np.nan), "NaN or inf"),
    "inf": (_nonfinite(np.inf), "NaN or inf"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_inputs_raise_one_clear_error_naming_the_file(tmp_path, case):
    make, expected = ERROR_CASES[case]
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message
    assert isinstance(info.value, LatticeTalkError)


def test_too_long_names_the_fix(tmp_path):
    path = write(tmp_path / "lecture.flac", tone(8000, seconds=2.0), 8000)
    with pytest.raises(AudioError, match="split it or raise the limit") as info:
        load_audio(path, max_seconds=1.5)
    assert str(path) in str(info.value)
    assert load_audio(path, max_seconds=2.5).duration == pytest.approx(2.0)


def test_a_video_file_gives_its_sound_track():
    pytest.importorskip("av")
    audio = load_audio(TALKING_HEAD)
    assert audio.sample_rate == 16000 and audio.duration == pytest.approx(3.0, abs=0.05)
    assert len(audio.sha256) == 64 and audio.rms_db > -40


def test_missing_soundfile_says_how_to_install(tmp_path, monkeypatch):
    path = write(tmp_path / "t.wav", tone(16000), 16000)
    monkeypatch.setitem(sys.modules, "soundfile", None)  # makes `import soundfile` raise ImportError
    with pytest.raises(AudioError, match="pip install soundfile") as info:
        load_audio(path)
    assert "Install dependencies" in str(info.value)


def test_read_failure_names_the_file(tmp_path, monkeypatch):
    # An I/O error mid-read (a dropped network drive, a bad sector); permissions cannot fake it when tests run as root.
    path = write(tmp_path / "remote.wav", tone(16000), 16000)

    def failing_digest(fileobj, digest):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(hashlib, "file_digest", failing_digest)
    with pytest.raises(AudioError, match="cannot read the file") as info:
        load_audio(path)
    assert str(info.value).startswith(str(path))


def test_audio_rejects_multichannel_samples():
    with pytest.raises(AudioError, match="mono"):
        Audio(np.zeros((10, 2), np.float32), 16000)
    with pytest.raises(AudioError, match="sample_rate"):
        Audio(np.zeros(10, np.float32), 0)


# ---------------------------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("rate", [16000, 48000])
def test_clipping_is_reported_not_rejected(tmp_path, rate):
    clipped = np.clip(tone(rate, amplitude=3.0), -1.0, 1.0)
    audio = load_audio(write(tmp_path / "hot.wav", clipped, rate, subtype="PCM_16"))
    # |3 sin| >= CLIP_LEVEL for all but asin(CLIP_LEVEL / 3) / (pi / 2) of each quarter period.
    expected = 1.0 - math.asin(CLIP_LEVEL / 3.0) / (math.pi / 2)
    assert audio.clipped_fraction == pytest.approx(expected, abs=0.01)  # measured before resampling
    assert load_audio(write(tmp_path / "clean.wav", tone(rate), rate)).clipped_fraction == 0.0


def test_clipping_counts_every_channel(tmp_path):
    left = np.clip(tone(16000, amplitude=3.0), -1.0, 1.0)
    audio = load_audio(write(tmp_path / "one_side.wav", np.stack([left, tone(16000)], axis=1), 16000, subtype="FLOAT"))
    assert audio.clipped_fraction == pytest.approx(np.mean(np.abs(left) >= CLIP_LEVEL) / 2, abs=1e-6)


# ---------------------------------------------------------------------------------------------- normalise
def test_normalise_reaches_target_rms():
    quiet = Audio(tone(16000, amplitude=0.01), 16000, source="quiet.wav", sha256="ab", clipped_fraction=0.25)
    out = normalise(quiet, target_rms_db=-20.0)
    assert out.rms_db == pytest.approx(-20.0, abs=1e-3) and out.peak <= PEAK_LIMIT
    assert (out.source, out.sha256, out.clipped_fraction, out.sample_rate) == ("quiet.wav", "ab", 0.25, 16000)
    assert quiet.rms_db == pytest.approx(20 * math.log10(0.01 / math.sqrt(2)), abs=1e-3)  # input untouched
    loud = Audio(tone(16000, amplitude=0.9), 16000)
    assert normalise(loud, target_rms_db=-30.0).rms_db == pytest.approx(-30.0, abs=1e-3)


def test_normalise_limits_gain_instead_of_clipping():
    rng = np.random.default_rng(1)
    samples = (0.01 * rng.standard_normal(16000)).astype(np.float32)
    samples[5000] = 0.8  # one plosive-like spike: reaching -20 dB RMS would push it far past full scale
    out = normalise(Audio(samples, 16000), target_rms_db=-20.0)
    assert out.peak <= PEAK_LIMIT and out.peak == pytest.approx(PEAK_LIMIT, abs=1e-5)
    assert out.rms_db < -20.0


@pytest.mark.parametrize("seed", range(20))
def test_normalise_never_exceeds_peak_limit(seed):
    rng = np.random.default_rng(seed)
    samples = (rng.uniform(0.001, 2.0) * rng.standard_normal(rng.integers(100, 5000)) ** 3).astype(np.float32)
    out = normalise(Audio(samples, 16000), target_rms_db=float(rng.uniform(-40.0, 0.0)))
    assert out.peak <= PEAK_LIMIT and np.isfinite(out.samples).all()


def test_normalise_refuses_silence():
    with pytest.raises(AudioError, match="silent"):
        normalise(Audio(np.zeros(100, np.float32), 16000, source="zeros.wav"))


# ---------------------------------------------------------------------------------------------- chunks
@pytest.mark.parametrize("n", [1, 399, 400, 401, 1000, 1090, 1091, 4321])
@pytest.mark.parametrize("chunk_s, overlap_s", [(0.04, 0.01), (0.04, 0.0), (0.1, 0.035)])
def test_iter_chunks_cover_every_sample_with_the_given_overlap(n, chunk_s, overlap_s):
    rate = 10000
    audio = Audio(np.arange(n, dtype=np.float32), rate)
    chunk, overlap = round(chunk_s * rate), round(overlap_s * rate)
    chunks = list(iter_chunks(audio, chunk_seconds=chunk_s, overlap_seconds=overlap_s))
    starts = [s for s, _ in chunks]
    assert starts[0] == 0 and all(b - a == chunk - overlap for a, b in zip(starts, starts[1:]))
    for start, samples in chunks:
        np.testing.assert_array_equal(samples, audio.samples[start : start + chunk])
    assert all(len(samples) == chunk for _, samples in chunks[:-1]) and 1 <= len(chunks[-1][1]) <= chunk
    assert chunks[-1][0] + len(chunks[-1][1]) == n  # the last chunk ends at the last sample
    assert len(chunks) == 1 or chunks[-2][0] + chunk < n  # and no chunk is redundant
    covered = np.zeros(n, dtype=int)
    for start, samples in chunks:
        covered[start : start + len(samples)] += 1
    assert covered.min() >= 1 and covered.max() <= (2 if overlap else 1)
    for (a, first), (b, _) in zip(chunks, chunks[1:]):
        assert a + len(first) - b == overlap


def test_iter_chunks_is_deterministic_on_real_speech():
    pytest.importorskip("av")
    audio = load_audio(TALKING_HEAD)
    first = list(iter_chunks(audio, chunk_seconds=1.0, overlap_seconds=0.25))
    second = list(iter_chunks(load_audio(TALKING_HEAD), chunk_seconds=1.0, overlap_seconds=0.25))
    assert [s for s, _ in first] == [s for s, _ in second] == list(range(0, audio.samples.size - 4000, 12000))
    assert len(first) == 4 and all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, second))
    assert len(list(iter_chunks(audio))) == 1  # default 20 s windows: one chunk for a 3 s clip


@pytest.mark.parametrize("chunk_s, overlap_s", [(0.0, 0.0), (1.0, 1.0), (1.0, 2.0), (1.0, -0.1)])
def test_iter_chunks_rejects_bad_windows(chunk_s, overlap_s):
    with pytest.raises(ValueError):
        next(iter_chunks(Audio(np.zeros(100, np.float32), 16000), chunk_seconds=chunk_s, overlap_seconds=overlap_s))
