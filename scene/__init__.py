"""The only place that writes into Blender data (``bpy``)."""
