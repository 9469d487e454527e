"""Log-mel features at 50 Hz: the non-self-supervised front end, and the baseline the SSL encoder must beat.

25 ms Hann windows every 20 ms (the same 50 Hz frame rate as wav2vec 2.0 / HuBERT), 80 mel bands,
log power, normalised per utterance so loudness and channel gain do not matter."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
HOP = 320  # 20 ms → 50 Hz
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 80
FEATURE_RATE = SAMPLE_RATE / HOP


@lru_cache(maxsize=1)
def _filterbank() -> np.ndarray:
    from ..data.realism import mel_filterbank  # the same triangular mel filters the realism check uses

    return mel_filterbank(rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=60.0, fmax=7600.0)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(N,) float32 at 16 kHz → (ceil(N / 320), 80) normalised log-mel, frame k centred at k·20 ms."""
    x = np.asarray(samples, np.float32)
    n_frames = max(1, int(np.ceil(len(x) / HOP)))
    padded = np.pad(x, (WIN // 2, WIN // 2 + n_frames * HOP - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][:n_frames] * np.hanning(WIN).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    mel = np.log(power @ _filterbank().T + 1e-6)
    return ((mel - mel.mean(0)) / (mel.std(0) + 1e-3)).astype(np.float32)
