"""A talking head the tests can treat as a real speaker: flite's slt voice (built from a real speaker's recordings)
speaks a text, the articulation rules animate the default head on its phoneme timing, and Blender renders it.
Needs flite, the bpy wheel and the 'video' extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def render_spoken_head(text: str, folder: Path, fps: float = 25.0, size: int = 256, upper_face: bool = False):
    """→ (video path, the AnimationClip the head was rendered with, the flite Utterance). ``upper_face``: the head
    also blinks, raises its brows on pitch accents and moves (the articulation rules' prosody); else the mouth is
    the only thing that moves."""
    from lattice_talk.core.clip import AnimationClip
    from lattice_talk.core.data import tts
    from lattice_talk.core.data.articulation import articulate
    from lattice_talk.core.data.video_clips import HEAD_ID, RenderConditions
    from lattice_talk.core.heads import create
    from lattice_talk.scene.video_render import render_clip_video

    utterance = tts.synthesize(text, "flite", "slt")
    names = create("default").expression_names
    art = articulate(utterance.phonemes, names, fps, utterance.audio, utterance.sample_rate, blinks=upper_face,
                     head_motion=3.0 if upper_face else 0.0)  # 3×: turns of a few degrees, as a speaker makes
    jaw = np.zeros((art.n_frames, 3), np.float32)
    jaw[:, 0] = art.jaw
    clip = AnimationClip(fps=fps, start_frame=1, head_id=HEAD_ID, expression=art.units, expression_names=names, jaw=jaw,
                         global_rotation=art.head_rotation if upper_face else None)
    video = Path(folder) / "head.mp4"
    render_clip_video(clip, RenderConditions(seed=1, width=size, height=size, fps=fps, camera_distance=0.5), video)
    return video, clip, utterance
