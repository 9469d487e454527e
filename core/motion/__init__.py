"""Video motion model: mesh convolution on the MediaPipe face-mesh graph.

``topology`` (numpy: triangles, spiral tables) imports anywhere; ``meshconv`` needs torch and is imported
only when used — ``import lattice_talk.core`` never pulls torch in."""
