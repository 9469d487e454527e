"""Log-mel features at 50 Hz: the decoder's non-self-supervised input, and the mel filterbank every log-mel in
the package uses.

25 ms Hann windows every 20 ms (the same 50 Hz frame rate as wav2vec 2.0 / HuBERT), 80 mel bands,
log power, normalised per utterance so loudness and channel gain do not matter. numpy only."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..audio import SPEECH_RATE

SAMPLE_RATE = SPEECH_RATE
HOP = 320  # 20 ms → 50 Hz
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 80
FEATURE_RATE = SAMPLE_RATE / HOP


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters, equally spaced on the mel scale, each peaking at 1."""
    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    bank = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, centre, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (freqs - lo) / (centre - lo)
        falling = (hi - freqs) / (hi - centre)
        bank[i] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


@lru_cache(maxsize=1)
def decoder_filterbank() -> np.ndarray:
    return mel_filterbank(rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=60.0, fmax=7600.0)


def n_feature_frames(n_samples: int) -> int:
    """Frames of the decoder's 50 Hz features for ``n_samples`` of 16 kHz audio: ceil(N / 320), at least one."""
    return max(1, int(np.ceil(n_samples / HOP)))


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz → (ceil(N / 320), 80) normalised log-mel, frame k centred at k·20 ms."""
    x = np.asarray(samples, np.float32)
    n_frames = n_feature_frames(len(x))
    padded = np.pad(x, (WIN // 2, WIN // 2 + n_frames * HOP - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][:n_frames] * np.hanning(WIN).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    mel = np.log(power @ decoder_filterbank().T + 1e-6)
    return ((mel - mel.mean(0)) / (mel.std(0) + 1e-3)).astype(np.float32)
