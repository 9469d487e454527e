"""A fixed log-mel filterbank as the feature encoder of a wav2vec 2.0 model (the "lighter front end").

wav2vec 2.0 learns its front end: a stack of strided convolutions from the waveform. On two CPU cores and
a few hours of synthetic speech that stack is what learns slowest, and it is the part a log-mel
filterbank already does well. Here the front end is the project's own log-mel features (25 ms Hann
windows every 20 ms, 80 mel bands, log power, normalised per band over the input) computed in torch, and
everything after it — feature projection, positional convolution, transformer, quantizer — is the stock
``Wav2Vec2ForPreTraining``, pretrained with its contrastive + diversity objective (as w2v-BERT and other
filterbank-input SSL models do).

The stock feature projection starts with a LayerNorm over each frame's channels. On learned conv features
that is harmless; on log-mel bands it subtracts each frame's mean log power, i.e. its loudness, which is what
drives the jaw (measured on the real clips: a linear read-out of frame loudness from the first hidden state
correlates 0.24 with the truth, from the log-mel bands 0.94). The bands are already standardised per band over
the input, so :func:`install` drops that LayerNorm.

The config keeps a one-layer conv geometry (kernel 400, stride 320, 80 channels) so transformers' length
and mask arithmetic (``_get_feat_extract_output_lengths``) counts the same frames this module makes, and
marks the model with ``lattice_talk_front_end`` = :data:`LOG_MEL`; :func:`install` swaps the modules in after
the model is built or loaded (the filterbank is fixed and the LayerNorm gone, so no weights are saved for them).
"""

from __future__ import annotations

from typing import Any

from ..errors import LatticeTalkError
from .log_mel import HOP, N_FFT, N_MELS, WIN, decoder_filterbank

FRONT_END_KEY = "lattice_talk_front_end"
LOG_MEL = "log_mel_80_keeps_loudness"
EARLIER_LOG_MEL = "log_mel_80"  # the first version, whose feature projection normalised loudness away
CONV_GEOMETRY = {"conv_dim": (N_MELS,), "conv_kernel": (WIN,), "conv_stride": (HOP,)}
# checkpoint keys of the replaced modules (absent, by design): the conv stack and the projection's LayerNorm
REPLACED_KEY_PREFIXES = ("feature_extractor.", "feature_projection.layer_norm.")

_MODULE_CLASS: type | None = None


def uses_log_mel(config: Any) -> bool:
    return getattr(config, FRONT_END_KEY, None) == LOG_MEL


def _module_class() -> type:
    """Build the torch module on first use, so importing this file does not import torch."""
    global _MODULE_CLASS
    if _MODULE_CLASS is None:
        import numpy as np
        import torch


        class LogMelFrontEnd(torch.nn.Module):
            """(B, N) waveform → (B, 80, T) normalised log-mel, frame k over samples [320k, 320k + 400)."""

            def __init__(self):
                super().__init__()
                self.register_buffer("window", torch.from_numpy(np.hanning(WIN).astype(np.float32)), persistent=False)
                self.register_buffer("filterbank", torch.from_numpy(np.ascontiguousarray(decoder_filterbank().T, np.float32)),
                                     persistent=False)

            def forward(self, waveform: torch.Tensor) -> torch.Tensor:
                frames = waveform.unfold(-1, WIN, HOP) * self.window  # (B, T, WIN)
                power = torch.fft.rfft(frames, N_FFT).abs() ** 2
                mel = torch.log(power @ self.filterbank + 1e-6)  # (B, T, 80)
                mel = (mel - mel.mean(1, keepdim=True)) / (mel.std(1, keepdim=True, unbiased=False) + 1e-3)
                return mel.transpose(1, 2)

        LogMelFrontEnd.__module__, LogMelFrontEnd.__qualname__ = __name__, "LogMelFrontEnd"
        _MODULE_CLASS = LogMelFrontEnd
    return _MODULE_CLASS


def log_mel_module() -> Any:
    """A new :class:`LogMelFrontEnd` (torch module, no weights)."""
    return _module_class()()


def install(model: Any) -> Any:
    """Put the log-mel front end into a ``Wav2Vec2Model`` or ``Wav2Vec2ForPreTraining`` whose config asks for
    it, without the feature projection's per-frame LayerNorm; other models are returned untouched."""
    if getattr(model.config, FRONT_END_KEY, None) == EARLIER_LOG_MEL:
        raise LatticeTalkError(f"{getattr(model.config, '_name_or_path', '') or 'this encoder'}: pretrained with the "
                               "first log-mel front end, which normalised each frame's loudness away; run "
                               "'speech pretrain' again for a new checkpoint")
    if uses_log_mel(model.config):
        import torch

        base = getattr(model, "wav2vec2", model)
        base.feature_extractor = log_mel_module()
        base.feature_projection.layer_norm = torch.nn.Identity()
    return model


def is_replaced_key(config: Any, key: str) -> bool:
    """Whether a checkpoint key belongs to a module the log-mel front end replaces (so its absence is expected)."""
    return uses_log_mel(config) and key.startswith(REPLACED_KEY_PREFIXES)
