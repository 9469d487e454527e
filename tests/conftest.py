"""Shared pytest setup: test helper modules (e.g. ``flame_fixtures``) live next to the tests and are imported by name."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def addon():
    """LatticeTalk registered in an empty factory scene (real Blender), unregistered afterwards."""
    bpy = pytest.importorskip("bpy", reason="the add-on registers in real Blender")

    import lattice_talk

    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    yield
    lattice_talk.unregister()
