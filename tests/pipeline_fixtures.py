"""A test pipeline: replays a given clip in steps, honouring stop requests. Lives in tests only —
the add-on never ships a generator that makes animation up."""

from __future__ import annotations

import time

from lattice_talk.core.clip import AnimationClip
from lattice_talk.core.pipeline import Cancelled, GenerateRequest


class ReplayPipeline:
    name = "replay"

    def __init__(self, clip: AnimationClip, steps: int = 10, delay: float = 0.0, check_audio: bool = True):
        self.clip, self.steps, self.delay, self.check_audio = clip, steps, delay, check_audio
        self.prepared = False

    def prepare(self) -> None:
        self.prepared = True

    def generate(self, request: GenerateRequest, progress, should_stop) -> AnimationClip:
        if self.check_audio:
            from lattice_talk.core.audio import load_audio

            load_audio(request.audio_path)  # real decoding: bad audio fails as it will for the speech model
        for step in range(self.steps):
            if should_stop():
                raise Cancelled()
            progress(f"chunk {step + 1}/{self.steps}", step / self.steps)
            time.sleep(self.delay)
        return self.clip
