"""Per-clip figures of the real-speech evaluation: real lip opening, each prediction and loudness over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluate import LOUDNESS


def _standardised(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    ref = x[frames] if frames.any() else x
    return (x - ref.mean()) / max(ref.std(), 1e-9)


def plot_clips(result: dict, out_dir: str | Path) -> list[Path]:
    """One PNG per clip: each signal standardised on the scored frames, p/b/m phones shaded, non-speech grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, signals in result["signals"].items():
        lips = signals["lips"]
        scored = lips.speech & lips.valid
        t = np.arange(lips.n_frames) / lips.fps
        fig, ax = plt.subplots(figsize=(12, 3.2))
        for phone in lips.bilabials:
            ax.axvspan(phone.start, phone.end, color="tab:red", alpha=0.18, lw=0)
        ax.fill_between(t, -3.5, 3.5, where=~lips.speech, color="0.9", step="mid", lw=0)
        ax.plot(t, _standardised(lips.opening, scored), color="k", lw=2, label="real lips (tracked)")
        for predictor, prediction in signals.items():
            if predictor == "lips":
                continue
            style = dict(color="0.45", lw=1, ls="--") if predictor == LOUDNESS else dict(lw=1.4)
            ax.plot(t, _standardised(prediction.opening, scored), label=predictor, **style)
        ax.set_ylim(-3.5, 3.5)
        ax.set_xlim(0, t[-1] if len(t) else 1)
        ax.set_xlabel("seconds (red: p/b/m, grey: not speech)")
        ax.set_ylabel("mouth opening (z)")
        ax.set_title(f"{name}: real mouth opening vs predicted vs loudness")
        ax.legend(loc="upper right", fontsize=8, ncol=4)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written
