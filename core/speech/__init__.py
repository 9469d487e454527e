"""Speech features for the generator: self-supervised encoders (wav2vec 2.0 / HuBERT / WavLM) and our own small one.

:mod:`.encoder` loads a ``transformers`` checkpoint and turns 16 kHz audio into frame features;
:mod:`.pretrain` trains our small wav2vec 2.0 encoder self-supervised on the synthetic corpus. Importing this
package is cheap: torch and transformers are imported when a model is loaded or trained.
"""

from .encoder import SUPPORTED_MODEL_TYPES, SpeechEncoder, frames_at, load_encoder, n_video_frames

__all__ = ["SUPPORTED_MODEL_TYPES", "SpeechEncoder", "frames_at", "load_encoder", "n_video_frames"]
