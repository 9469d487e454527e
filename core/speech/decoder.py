"""The encoder–decoder's decoder: speech features (50 Hz) → the default head's mouth parameters per frame.

A stack of dilated 1-D convolutions sees about ±0.6 s of speech around each frame — enough for
coarticulation (lips round before a rounded vowel) — then the sequence is resampled to the output frame
rate (FaceFormer-style alignment: linear interpolation of hidden states to the video frame count) and
projected to ARKit units (0–1) and the jaw angle. An optional auxiliary head classifies each frame's
mouth class (the viseme of the phoneme being spoken): training it makes the hidden states speaker-
independent phonetic features, which is what the mouth needs from unseen voices.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

JAW_MAX = 0.45  # rad: the decoder's jaw output lies in [0, JAW_MAX]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.norm = nn.GroupNorm(1, channels)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.dropout(F.gelu(self.norm(self.conv(x)))))


class DecoderOutput(NamedTuple):
    units: torch.Tensor  # (B, T, U) in 0..1
    jaw: torch.Tensor  # (B, T) rad
    closure_logit: torch.Tensor  # (B, T)
    class_logits: torch.Tensor | None  # (B, T, C) mouth classes, when the decoder has the auxiliary head


class MotionDecoder(nn.Module):
    """(B, T50, F) features → :class:`DecoderOutput` for ``n_frames`` = T output frames. The closure
    channel lets the pipeline *seal* the lips on p/b/m (as the corpus's articulation does) instead of
    hoping the regression lands exactly on contact."""

    def __init__(self, in_dim: int, n_units: int, hidden: int = 160, dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2),
                 n_classes: int = 0):
        super().__init__()
        self.config = {"in_dim": in_dim, "n_units": n_units, "hidden": hidden, "dilations": list(dilations),
                       "n_classes": n_classes}
        self.n_units = n_units
        self.inp = nn.Conv1d(in_dim, hidden, 1)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, d) for d in dilations))
        self.post = nn.Sequential(nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU())
        self.out = nn.Conv1d(hidden, n_units + 2, 1)
        self.classes = nn.Conv1d(hidden, n_classes, 1) if n_classes else None

    def forward(self, features: torch.Tensor, n_frames: int) -> DecoderOutput:
        x = self.blocks(self.inp(features.transpose(1, 2)))
        x = self.post(F.interpolate(x, size=n_frames, mode="linear", align_corners=False))
        y = self.out(x).transpose(1, 2)
        logits = self.classes(x).transpose(1, 2) if self.classes is not None else None
        return DecoderOutput(torch.sigmoid(y[..., :self.n_units]), JAW_MAX * torch.sigmoid(y[..., self.n_units]),
                             y[..., self.n_units + 1], logits)
