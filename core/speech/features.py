"""The decoder's input features: log-mel bands (:mod:`.log_mel`), an SSL encoder's hidden states, or both, and
optionally the phonetic encoder's states after them, all on the same 50 Hz frame grid; ``decoder_features`` picks
what a decoder was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .log_mel import FEATURE_RATE, log_mel, n_feature_frames

LOG_MEL_FEATURES = "log_mel_80"
SSL_FEATURES = "ssl_hidden_states"  # every hidden state of a speech encoder, side by side (its own layer mix is learned)
# log-mel bands first, then every hidden state at the same 50 Hz frame centres: the encoder adds context to the
# bands instead of replacing them, and a log-mel decoder widens into one (train.widened_input)
LOG_MEL_AND_SSL_FEATURES = "log_mel_80_and_ssl_hidden_states"
# ... then the phonetic encoder's states (Whisper's first layers, :mod:`.phonetic_encoder`: what the p/b/m detector and
# the mouth-opening head read), as they come: the decoder's first layer holds their standardisation
# (train.fold_input_standardization), so one pass of that encoder serves the decoder and both heads
LOG_MEL_SSL_AND_PHONETIC_FEATURES = "log_mel_80_ssl_hidden_states_and_phonetic_states"
ENCODER_FEATURES = (SSL_FEATURES, LOG_MEL_AND_SSL_FEATURES, LOG_MEL_SSL_AND_PHONETIC_FEATURES)


@dataclass(frozen=True)
class StackedFeatures:
    """audio → log-mel bands and SSL states (``base``), then the phonetic encoder's states (``phonetic``, read from
    the model folder's ``encoder``); :meth:`stack` takes states already computed for the heads."""

    base: Callable[[np.ndarray], np.ndarray]
    phonetic: Callable[[np.ndarray], np.ndarray]
    encoder: str  # the phonetic encoder's folder name inside the model folder, as the heads name theirs (else its path)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return self.stack(samples, self.phonetic(samples))

    def stack(self, samples: np.ndarray, states: np.ndarray) -> np.ndarray:
        return np.concatenate([self.base(samples), np.asarray(states, np.float16)], axis=1)


def ssl_features(encoder_dir: str | Path, with_log_mel: bool = False, device: str = "cpu"):
    """audio → (ceil(N / 320), n_states × hidden) features from the SSL encoder in ``encoder_dir``: the
    decoder's first layer learns how to mix the encoder's layers (a superset of SUPERB's weighted sum).
    ``with_log_mel``: the 80 log-mel bands first, then the states. ``device``: where the encoder runs (our own
    encoder on the CPU with int8 Linear layers, :mod:`.cpu_int8`).

    The states are interpolated to log-mel's frame centres (frame k at k · 20 ms): the encoder's frame k is
    centred half a window later (12.5 ms, 0.4 of a 30 fps frame) and it makes two frames fewer, while the
    decoder's resampling to the video frames assumes frame k at k · 20 ms."""
    from .cpu_int8 import int8_linears
    from .encoder import load_encoder
    from .light_encoder import is_light

    encoder = load_encoder(encoder_dir, layer="weighted", device=device)
    if is_light(encoder.model):  # (transformers' modules read their Linear weights directly: they stay fp32)
        encoder.model = int8_linears(encoder.model, device)

    def features(samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, np.float32)
        states = encoder.hidden_states(x)  # (S, T, H)
        flat = encoder.frames_at(states.permute(1, 0, 2).reshape(states.shape[1], -1), n_feature_frames(len(x)),
                                 FEATURE_RATE).cpu().numpy()
        # Standardised per dimension over the input like log_mel: the pre-LN transformer's residual stream
        # grows layer by layer, and unscaled states slow the decoder's training (measured: held-out loss
        # 2.29 vs log-mel's 1.75 after 14 epochs). fp16, as the decoder's inputs are read (train._batch,
        # model.decode): a training corpus of 24 h is 4.3 M frames × 1024 states, 8.8 GB in fp16.
        flat = ((flat - flat.mean(0)) / (flat.std(0) + 1e-3)).astype(np.float16)
        return np.concatenate([log_mel(x).astype(np.float16), flat], axis=1) if with_log_mel else flat

    return features


def decoder_features(config: dict, model_dir: str | Path, device: str = "cpu"):
    """The feature function a trained decoder was trained on (``decoder.json`` "features", "encoder" and, for the
    phonetic states, "phonetic_encoder": a :class:`StackedFeatures`); an encoder runs on ``device``."""
    from ..errors import LatticeTalkError

    from .phonetic_encoder import phonetic_features

    kind = config.get("features", LOG_MEL_FEATURES)
    if kind == LOG_MEL_FEATURES:
        return log_mel
    if kind not in ENCODER_FEATURES:
        raise LatticeTalkError(f"{model_dir}: decoder features {kind!r} are not known to this LatticeTalk; update it")
    base = ssl_features(_encoder_reference(config, "encoder", model_dir), with_log_mel=kind != SSL_FEATURES,
                        device=device)
    if kind != LOG_MEL_SSL_AND_PHONETIC_FEATURES:
        return base
    phonetic = _encoder_reference(config, "phonetic_encoder", model_dir)  # a folder: no hub id for this key
    inside = Path(phonetic).resolve().parent == Path(model_dir).resolve()  # named as the heads name theirs
    return StackedFeatures(base, phonetic_features(phonetic, device),
                           Path(phonetic).name if inside else str(Path(phonetic).resolve()))


def _encoder_reference(config: dict, key: str, model_dir: str | Path) -> str | Path:
    """The encoder ``decoder.json``'s ``key`` names: a folder inside the model folder, an absolute folder or a hub
    id (for "encoder")."""
    from ..errors import LatticeTalkError

    reference = config.get(key) or ""
    folder = Path(model_dir) / reference  # an absolute reference stays itself
    hub_id = key == "encoder" and not Path(reference).is_absolute() and "/" in reference
    if not reference or (not folder.is_dir() and not hub_id):
        what = "speech encoder" if key == "encoder" else "phonetic encoder (speech import-whisper)"
        raise LatticeTalkError(f"{model_dir}: the {what} its decoder.json names as {key!r} ({reference}) is not "
                               "there; copy that folder back (or train the decoder again)")
    return folder if folder.is_dir() else reference
