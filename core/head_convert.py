"""A clip made for one head → the same performance on another head, through the motion space.

The source head's MediaPipe points are posed frame by frame with the clip's expression and jaw, and
:class:`~lattice_talk.core.retarget.Retargeter` solves the target head's expression and jaw that reproduce them.
So a take on the default head (ARKit units) becomes FLAME expression + jaw for a user's FLAME head, and a FLAME
clip becomes the default head's ARKit units (which then drive any ARKit-named character or a Live Link CSV).
Rigid motion (global rotation and translation, neck, eyes, blinks) is the same on every head and is copied.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .clip import AnimationClip
from .errors import ClipError
from .head_model import HeadModel

COPIED_CHANNELS = ("neck", "global_rotation", "global_translation", "eye_L", "eye_R", "blink")


def convert_clip(clip: AnimationClip, source: HeadModel, target: HeadModel) -> AnimationClip:
    """``clip`` (made for ``source``) as a clip for ``target``; its provenance records the conversion."""
    from .heads import require_landmarks
    from .landmark_rig import LandmarkRig
    from .motion_file import MotionTrack
    from .retarget import Retargeter, to_clip

    if clip.head_id != source.head_id:
        raise ClipError(f"the clip drives head {clip.head_id!r}, not {source.head_id!r}; give the head it was made for")
    if clip.expression is None and clip.jaw is None:
        raise ClipError("the clip has neither expression nor jaw channels; there is no face motion to convert")
    require_landmarks(source)
    require_landmarks(target)
    n = clip.n_frames
    expression = np.zeros((n, source.n_expression), np.float32)
    if clip.expression is not None:
        unknown = sorted(set(clip.expression_names) - set(source.expression_names))
        if unknown:
            raise ClipError(f"expression channels {', '.join(unknown[:6])} are not units of head {source.head_id!r}")
        for k, name in enumerate(clip.expression_names):
            expression[:, source.expression_names.index(name)] = clip.expression[:, k]
    pose = np.zeros((n, 5, 3), np.float32)
    if clip.jaw is not None:
        pose[:, 2] = clip.jaw
    rig = LandmarkRig(source)
    neutral = rig.points(np.zeros((1, source.n_expression), np.float32), np.zeros((1, 5, 3), np.float32))[0]
    track = MotionTrack(fps=clip.fps, points=rig.points(expression, pose), point_ids=rig.mediapipe_index, neutral=neutral)
    converted = to_clip(Retargeter(target).retarget(track), clip.fps, clip.start_frame, target.head_id)
    for name in COPIED_CHANNELS:
        setattr(converted, name, getattr(clip, name))
    if clip.eyelids is not None:  # measured lids beat the ones read back off the landmarks
        converted.eyelids = clip.eyelids
    converted.provenance = {**clip.provenance, "converted_from": clip.head_id, **converted.provenance}
    converted.validate()
    return converted


def conversion_summary(clip: AnimationClip) -> str | None:
    """What a converted clip's provenance says was converted, in one line for reports; None when it was not."""
    source = clip.provenance.get("converted_from")
    if source is None:
        return None
    channels = [f"{len(clip.expression_names)} expression channels"] if clip.expression is not None else []
    channels += ["jaw"] if clip.jaw is not None else []
    return (f"converted from head {source} to {clip.head_id} through the MediaPipe motion space: "
            f"{' and '.join(channels)} solved for this head; head pose, neck, eyes and blinks copied")


def clip_for_head(clip: AnimationClip, head_id: str, load_head: Callable[[], HeadModel]) -> AnimationClip:
    """``clip`` ready for the head ``head_id``: as is when made for it, converted when made for the default head
    (``load_head`` loads the target only then). Other heads' clips need their head file: the CLI's ``convert``."""
    from .heads import create

    if clip.head_id == head_id:
        return clip
    default = create("default")
    if clip.head_id != default.head_id:
        raise ClipError(f"the clip drives head {clip.head_id!r}, not {head_id!r}; convert it with "
                        "python -m lattice_talk convert CLIP --source HEAD_FILE --target ... first")
    return convert_clip(clip, default, load_head())
