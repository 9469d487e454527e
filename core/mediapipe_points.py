"""Named sets of MediaPipe face-mesh point indices (478-point topology with iris), used by the motion
space, the metrics and retargeting. Indices follow MediaPipe's canonical face model."""

from __future__ import annotations

N_FACE_POINTS = 468  # the face mesh; 478 with the two irises' 5 points each

LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
LIPS = LIPS_OUTER + LIPS_INNER
UPPER_LIP_INNER_MID = 13
LOWER_LIP_INNER_MID = 14
MOUTH_CORNERS = (61, 291)  # the subject's right, left
EYE_OUTER_CORNERS = (33, 263)  # the subject's right, left: inter-ocular distance for normalisation
LEFT_EYE_LIDS = (386, 374)  # upper, lower (subject's left)
RIGHT_EYE_LIDS = (159, 145)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
FOREHEAD = (10, 338, 297, 332, 284, 251, 109, 67, 103, 54, 21, 151, 9, 8)
EYES = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
        263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
UPPER_FACE = BROWS + FOREHEAD + EYES  # for upper-face dynamics deviation (FDD)
# Brow height (each brow's mean height over its own eye's corners): MediaPipe lists the subject's right brow first.
BROW_HEIGHTS = {"left": (BROWS[len(BROWS) // 2:], (263, 362)), "right": (BROWS[:len(BROWS) // 2], (33, 133))}
NOSE_BRIDGE = (6, 168, 197, 195, 5, 4, 1)  # moves rigidly with the skull: stable for pose
