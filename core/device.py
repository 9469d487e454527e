"""Which torch device the speech and video models run on: the user's choice, checked against this machine."""

from __future__ import annotations

from collections.abc import Callable

from .errors import LatticeTalkError

DEVICES = ("cpu", "cuda")


def torch_device(requested: str, notice: Callable[[str], None]) -> str:
    """``"cuda"`` when asked for and usable here, else ``"cpu"``; a CUDA request that cannot be met runs on the CPU
    and ``notice`` gets one line saying so (a missing GPU must not stop a take, but the user should know)."""
    requested = requested.lower()
    if requested not in DEVICES:
        raise LatticeTalkError(f"unknown compute device {requested!r}; choose one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"  # the pipeline itself says how to install torch
    if torch.cuda.is_available():
        return "cuda"
    why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
    notice(f"notice: CUDA was asked for but {why} (torch {torch.__version__}); running on the CPU")
    return "cpu"
