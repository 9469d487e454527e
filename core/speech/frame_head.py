"""A small network on the 50 Hz speech features with one value per output frame: the shape of the p/b/m detector
(:mod:`.bilabial`) and of the mouth-opening head (:mod:`.opening`). Dilated 1-D convolutions (±0.6 s of context with
the default dilations), resampled to the output frames as the decoder is."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LatticeTalkError
from .decoder import ResidualBlock


class FrameHead(nn.Module):
    """(B, T50, F) features → (B, T) values at ``n_frames`` output frames."""

    def __init__(self, in_dim: int, hidden: int = 96, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)):
        super().__init__()
        self.config = {"in_dim": in_dim, "hidden": hidden, "dilations": list(dilations)}
        self.inp = nn.Conv1d(in_dim, hidden, 1)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, d) for d in dilations))
        self.out = nn.Conv1d(hidden, 1, 3, padding=1)

    def forward(self, features: torch.Tensor, n_frames: int) -> torch.Tensor:
        x = self.blocks(self.inp(features.transpose(1, 2)))
        return self.out(F.interpolate(x, size=n_frames, mode="linear", align_corners=False))[:, 0]


def head_sizes(config: object, path: Path, fix: str) -> dict:
    """A head config's checked ``"model"`` object → FrameHead's keyword arguments; one error naming ``path``."""
    from ..validate import whole_number

    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or set(model) != {"in_dim", "hidden", "dilations"} \
            or not isinstance(model["dilations"], list) or not 0 < len(model["dilations"]) <= 64:
        raise LatticeTalkError(f"{path}: needs a \"model\" object with in_dim, hidden and 1–64 dilations; {fix}")
    return {"in_dim": whole_number(model["in_dim"], f"{path}: model.in_dim", 1, 1 << 16, fix),
            "hidden": whole_number(model["hidden"], f"{path}: model.hidden", 1, 4096, fix),
            "dilations": tuple(whole_number(d, f"{path}: model.dilations", 1, 1024, fix) for d in model["dilations"])}


def run_head(head: FrameHead, features, n_frames: int):
    """(T50, F) features → the head's (n_frames,) raw outputs as numpy."""
    import numpy as np

    device = next(head.parameters()).device
    with torch.no_grad():
        out = head(torch.from_numpy(np.asarray(features, np.float32))[None].to(device), n_frames)
    return out[0].cpu().numpy()
