"""LatticeTalk's compute layer: plain Python, no ``bpy`` (a test enforces it)."""
