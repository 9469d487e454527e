"""Pictures to check the articulatory targets by eye: every mouth class's lip shape on the default head."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from ..landmark_rig import LandmarkRig
from ..mediapipe_points import LIPS_INNER, LIPS_OUTER
from .articulation import MOUTH_TARGETS
from ..mouth import SEAL_JAW, SEAL_UNITS


def _figure(size: tuple[float, float]):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise LatticeTalkError("plots need matplotlib: pip install -c constraints.txt -e '.[eval]'") from exc
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_visemes(rig: LandmarkRig, unit_names: tuple[str, ...], out_png: str | Path) -> Path:
    """Front view of the lip contours for each mouth class's target (and the bilabial seal), grey = rest."""
    shapes = {name: (target.units, target.jaw) for name, target in MOUTH_TARGETS.items()}
    shapes["bilabial (sealed)"] = (SEAL_UNITS, SEAL_JAW)
    column = {int(m): i for i, m in enumerate(rig.mediapipe_index)}

    def lips(units: dict[str, float], jaw: float) -> np.ndarray:
        expression = np.zeros((1, len(unit_names)), np.float32)
        for name, value in units.items():
            expression[0, unit_names.index(name)] = value
        pose = np.zeros((1, 5, 3), np.float32)
        pose[0, 2, 0] = jaw
        return rig.points(expression, pose)[0] * 1000.0  # mm

    rest = lips({}, 0.0)
    fig = _figure((14, 8))
    axes = fig.subplots(4, 4).ravel()
    for ax, (name, (units, jaw)) in zip(axes, shapes.items()):
        pts = lips(units, jaw)
        for contour in (LIPS_OUTER, LIPS_INNER):
            ring = [column[i] for i in contour + contour[:1]]
            ax.plot(rest[ring, 0], rest[ring, 1], color="0.75", linewidth=1)
            ax.plot(pts[ring, 0], pts[ring, 1], color="tab:red" if "bilabial" in name else "black", linewidth=1.4)
        ax.set_title(f"{name}  (jaw {np.degrees(jaw):.0f}°)", fontsize=9)
        ax.set_xlim(rest[:, 0].min() - 6, rest[:, 0].max() + 6)  # one scale for every panel
        ax.set_ylim(rest[:, 1].min() - 26, rest[:, 1].max() + 6)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shapes):]:
        ax.axis("off")
    fig.suptitle("Mouth targets on the default head (black) over the rest pose (grey), front view")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, metadata={"Software": None})
    return out_png
