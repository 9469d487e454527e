"""Shared pytest setup: test helper modules (e.g. ``flame_fixtures``) live next to the tests and are imported by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
