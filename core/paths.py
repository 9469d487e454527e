"""Where the package's shipped data lies: the manifests of real recordings (``datasets/``; no footage or audio)."""

from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"
