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
        self.requests: list[GenerateRequest] = []  # what each generate() was asked for

    def prepare(self) -> None:
        self.prepared = True

    def generate(self, request: GenerateRequest, progress, should_stop) -> AnimationClip:
        self.requests.append(request)
        if self.check_audio:
            from lattice_talk.core.audio import load_audio

            load_audio(request.audio_path)  # real decoding: bad audio fails as it will for the speech model
        for step in range(self.steps):
            if should_stop():
                raise Cancelled()
            progress(f"chunk {step + 1}/{self.steps}", step / self.steps)
            time.sleep(self.delay)
        return self.clip


def save_tiny_decoder(folder):
    """A small random-init speech decoder (seed 0) saved like trained weights: the speech pipeline's plumbing
    without training. Needs torch and safetensors."""
    import json

    import torch
    from safetensors.torch import save_file

    from lattice_talk.core.heads import create
    from lattice_talk.core.speech.decoder import MotionDecoder
    from lattice_talk.core.speech.log_mel import N_MELS
    from lattice_talk.core.speech.model import DECODER_CONFIG, DECODER_FILE

    head = create("default")
    torch.manual_seed(0)
    model = MotionDecoder(N_MELS, head.n_expression, hidden=32, dilations=(1, 2))
    save_file({k: v.half() for k, v in model.state_dict().items()}, str(folder / DECODER_FILE))
    (folder / DECODER_CONFIG).write_text(json.dumps({"model": model.config, "features": "log_mel_80", "fps": 30.0,
                                                     "unit_names": list(head.expression_names)}))
    return folder
