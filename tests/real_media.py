"""The real talking-face clips the repository ships: tests/data/grid_s1 (GRID speaker s1, CC BY 4.0, see its README)."""

from pathlib import Path

GRID_DIR = Path(__file__).resolve().parent / "data" / "grid_s1"
TALKING_HEAD = GRID_DIR / "sgic1a.mpg"  # 75 frames, 360×288, 25 fps, 3.0 s of speech with its sound
REAL_CLIPS = (TALKING_HEAD, GRID_DIR / "pbai7a.mpg")

