"""Blender operators: they orchestrate core and scene, and hold no math."""
