"""A talking head the tests can treat as a real speaker: flite's slt voice (built from a real speaker's recordings)
speaks a text, the articulation rules animate the default head on its phoneme timing, and Blender renders it.
Needs flite, the bpy wheel and the 'video' extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render_spoken_head(text: str, folder: Path, fps: float = 25.0, size: int = 256):
    """→ (video path, the AnimationClip the head was rendered with, the flite Utterance). No blinks, no head motion:
    the mouth is the only thing that moves."""
    from lattice_talk.core.clip import AnimationClip
    from lattice_talk.core.data import tts
    from lattice_talk.core.data.articulation import articulate
    from lattice_talk.core.data.video_clips import HEAD_ID, RenderConditions
    from lattice_talk.core.heads import create
    from lattice_talk.scene.video_render import render_clip_video

    utterance = tts.synthesize(text, "flite", "slt")
    names = create("default").expression_names
    art = articulate(utterance.phonemes, names, fps, utterance.audio, utterance.sample_rate, blinks=False, head_motion=0.0)
    jaw = np.zeros((art.n_frames, 3), np.float32)
    jaw[:, 0] = art.jaw
    clip = AnimationClip(fps=fps, start_frame=1, head_id=HEAD_ID, expression=art.units, expression_names=names, jaw=jaw)
    video = Path(folder) / "head.mp4"
    render_clip_video(clip, RenderConditions(seed=1, width=size, height=size, fps=fps, camera_distance=0.5), video)
    return video, clip, utterance
