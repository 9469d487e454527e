"""The phonetic encoder: the first layers of Whisper's audio encoder (OpenAI, MIT), which the p/b/m detector and the
mouth-opening head read.

Whisper learnt English phonetics from 680,000 hours of real speech; our own small encoder learnt from synthetic
voices and a few hours of real ones, and a detector on its features misses a p, b or m of a new voice one time in
five. On the first layers of Whisper's encoder the same detector, trained on the same real speech, finds nearly all
of them (MODEL_CARD.md, p/b/m detector). Only the layers the detector reads are kept (a few of base's six), so the
encoder stays small (22 MB in fp16 for three). It is the speech model's largest cost, so on the CPU its Linear
layers run in int8 and audio is encoded in short pieces (MODEL_CARD.md, Speed).

The module is Whisper's encoder as published: log-mel (80 bands, 25 ms windows every 10 ms, log10, floored 8 below
the peak, scaled), two GELU convolutions (the second halves the rate to 50 Hz), sinusoidal positions, pre-LN
transformer blocks. Positions cover 30 s; audio is encoded in pieces of PIECE_SECONDS. Weights come from a
CTranslate2 conversion of the published checkpoint (``speech import-whisper``, :mod:`.ct2_whisper`)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError

PHONETIC_FEATURES = "whisper_encoder_states"  # a head's config "features" (bilabial.json, opening.json): it reads this encoder
PHONETIC_DIR = "phonetic_encoder"  # its folder inside a speech model folder
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"
CONFIG_FORMAT = "lattice_talk.whisper_encoder/1"
SAMPLE_RATE, N_FFT, HOP = 16000, 400, 160
FIX = "copy the speech model folder again, or make the encoder with 'python -m lattice_talk speech import-whisper'"
# Whisper attends over 30 s, but what its first layers hear of a p, b or m lies close to it: pieces of 8 s with 0.5 s
# of context either side cost a fifth less than one 22 s piece (the attention grows with the square of the length),
# and the detector finds as many p/b/m on dev voices and dev videos (MODEL_CARD.md, Speed)
PIECE_SECONDS, PIECE_CONTEXT_SECONDS = 8.0, 0.5
# Whisper's sizes, tiny to large (a config beyond them is damaged or hostile, and would allocate gigabytes)
LIMITS = {"n_mels": (1, 128), "d_model": (8, 1280), "heads": (1, 20), "layers": (1, 32), "positions": (1, 1500)}


@functools.lru_cache(maxsize=1)
def _encoder_class():
    """WhisperEncoderLayers, built once on first use (torch is imported only then)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        """Pre-LN self-attention and MLP; query, key and value in one projection (the key's bias is zero)."""

        def __init__(self, d_model: int, heads: int):
            super().__init__()
            self.heads = heads
            self.attn_norm, self.qkv, self.out = nn.LayerNorm(d_model), nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
            self.mlp_norm, self.fc1, self.fc2 = nn.LayerNorm(d_model), nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, d = x.shape
            q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            x = x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))

    class WhisperEncoderLayers(nn.Module):
        """(B, n_mels, 2T) log-mel → (B, T, d_model) states of the last kept layer, 50 Hz."""

        def __init__(self, n_mels: int, d_model: int, heads: int, layers: int, positions: int):
            super().__init__()
            self.config = {"n_mels": n_mels, "d_model": d_model, "heads": heads, "layers": layers, "positions": positions}
            self.conv1 = nn.Conv1d(n_mels, d_model, 3, padding=1)
            self.conv2 = nn.Conv1d(d_model, d_model, 3, stride=2, padding=1)
            self.register_buffer("positions", torch.zeros(positions, d_model))
            self.register_buffer("mel_filters", torch.zeros(N_FFT // 2 + 1, n_mels))  # Whisper's (slaney) mel bank
            self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
            x = x + self.positions[:x.shape[1]]
            for block in self.blocks:
                x = block(x)
            return x

    return WhisperEncoderLayers


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """(201, n_mels) Whisper's mel filter bank (slaney scale and norm, 0–8 kHz), as transformers builds it; stored in
    the encoder's weights at import, so generating never imports transformers (~2.5 s)."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                           mel_scale="slaney").astype(np.float32)


def log_mel(samples: np.ndarray, filters: "torch.Tensor") -> "torch.Tensor":
    """(N,) float32 at 16 kHz → (n_mels, N // 160) Whisper log-mel through ``filters`` (201, n_mels) (its
    ``log_mel_spectrogram``: the last STFT frame dropped, log10 floored 8 below the peak, (x + 4) / 4)."""
    import torch

    x = torch.from_numpy(np.asarray(samples, np.float32)).to(filters.device)
    window = torch.hann_window(N_FFT, device=filters.device)
    spectrum = torch.stft(x, N_FFT, HOP, window=window, return_complex=True)[:, :-1].abs() ** 2
    mel = torch.clamp(filters.T @ spectrum, min=1e-10).log10()
    return (torch.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0


def load_encoder(folder: str | Path, device: str = "cpu"):
    """The encoder in ``folder`` (``config.json`` + fp16 ``model.safetensors``), fp32 in memory, checked."""
    from ..validate import MAX_CONFIG_BYTES, read_json, whole_number
    from .model import load_weights

    folder = Path(folder)
    path = folder / CONFIG_FILE
    config = read_json(path, "phonetic encoder config", MAX_CONFIG_BYTES, FIX)
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise LatticeTalkError(f"{path}: not a LatticeTalk Whisper encoder (format {CONFIG_FORMAT}); {FIX}")
    sizes = {key: whole_number(config.get(key), f"{path}: {key}", lo, hi, FIX) for key, (lo, hi) in LIMITS.items()}
    if sizes["d_model"] % sizes["heads"]:
        raise LatticeTalkError(f"{path}: d_model {sizes['d_model']} is not a multiple of heads {sizes['heads']}; {FIX}")
    return load_weights(_encoder_class()(**sizes), folder / WEIGHTS_FILE, CONFIG_FILE, FIX).to(device)


def phonetic_features(folder: str | Path, device: str = "cpu"):
    """audio (N,) at 16 kHz → (ceil(N / 320), d_model) float32 states of the encoder in ``folder``, frame k at
    k · 20 ms as the decoder's features (log_mel.n_feature_frames). Encoded in pieces of PIECE_SECONDS, each with
    PIECE_CONTEXT_SECONDS of audio either side; on the CPU with int8 Linear layers."""
    import torch

    from .cpu_int8 import int8_linears
    from .log_mel import n_feature_frames

    encoder = int8_linears(load_encoder(folder, device), device)
    frames_per_second = SAMPLE_RATE / (2 * HOP)
    positions = encoder.config["positions"]
    context = min(int(PIECE_CONTEXT_SECONDS * frames_per_second), (positions - 1) // 2)
    piece = min(int(PIECE_SECONDS * frames_per_second), positions - 2 * context)

    def features(samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, np.float32)
        n = n_feature_frames(len(x))
        x = np.pad(x, (0, max(0, 2 * HOP - len(x))))  # at least one 50 Hz frame
        with torch.no_grad():
            mel = log_mel(x, encoder.mel_filters)
            mel = torch.nn.functional.pad(mel, (0, mel.shape[1] % 2))  # an even count: conv2 halves it
            total, states = mel.shape[1] // 2, []
            for start in range(0, total, piece):
                lo, hi = max(0, start - context), min(total, start + piece + context)
                encoded = encoder(mel[None, :, 2 * lo:2 * hi])[0]
                states.append(encoded[start - lo:start - lo + piece].cpu())
        out = torch.cat(states).numpy()
        return np.pad(out, ((0, max(0, n - len(out))), (0, 0)), mode="edge")[:n]

    return features
