"""Self-supervised speech encoders: 16 kHz audio → frame features, from a ``transformers`` checkpoint.

:func:`load_encoder` takes a local folder holding a wav2vec 2.0, HuBERT or WavLM checkpoint (``config.json`` +
``model.safetensors``, as ``save_pretrained`` writes it) or, when the caller allows downloads, a hub id. The model
class is picked explicitly from the config's ``model_type`` (``Wav2Vec2Model``, ``HubertModel``, ``WavLMModel``);
other model types are refused and ``trust_remote_code`` is never used, so a checkpoint cannot run code of its own.
Weights load from safetensors only (``use_safetensors=True``): a folder with nothing but ``pytorch_model.bin``
(a pickle) is refused with the command that converts it.

Input normalisation follows the checkpoint's feature extractor: ``do_normalize`` in ``preprocessor_config.json``
when the folder has one, otherwise the config's ``feat_extract_norm`` — ``"layer"`` models (wav2vec2-large-lv60,
WavLM, HuBERT-large) were trained on zero-mean unit-variance input, ``"group"`` base models on raw samples. The
statistics are taken over the whole utterance (as the feature extractor does), before chunking.

:meth:`SpeechEncoder.encode` returns ``(T, H)`` features at the encoder's frame rate (16 000 / product of the conv
strides: 50 Hz for the standard stack). Long audio runs in overlapping chunks (20 s with 1 s overlap by default,
cut with :func:`~..audio.iter_chunks`); each chunk's frames inside the overlap are dropped half from each side, so
memory and attention cost stay bounded by the chunk length. Frames near a seam see up to half an overlap less
context than an unchunked pass would give them: the convolutions (25 ms receptive field) and a positional
convolution shorter than half the overlap give identical features there; the transformer's global attention does
not (the chunk limits what it attends to).

:func:`frames_at` resamples features to a video frame count by linear interpolation in time (FaceFormer-style
alignment); video frame ``j`` is at ``j / fps`` seconds, as in the corpus articulation.

Import cost: this module imports numpy only; torch and transformers are imported inside the functions that need
them, and our own log-mel front-end encoder loads without transformers (:mod:`.light_encoder`). ``torch.set_num_threads`` is the caller's business.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..audio import SPEECH_RATE
from ..errors import LatticeTalkError
from ..validate import MAX_CONFIG_BYTES, read_json
from .hf_hub import offline_hub, quiet_transformers

if TYPE_CHECKING:  # pragma: no cover
    import torch

# model_type → (config class, bare model class) in transformers; nothing else is loaded.
SUPPORTED_MODEL_TYPES: dict[str, tuple[str, str]] = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
    "hubert": ("HubertConfig", "HubertModel"),
    "wavlm": ("WavLMConfig", "WavLMModel"),
}
SAMPLE_RATE = SPEECH_RATE
DEFAULT_CHUNK_SECONDS = 20.0
DEFAULT_OVERLAP_SECONDS = 1.0
# Keys a bare model may lack in a checkpoint without harm at inference (the mask embedding is used in training only).
_OPTIONAL_KEYS = ("masked_spec_embed",)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SETTING = "`speech train --encoder` (or the speech model's decoder.json)"  # a decoder is trained on one encoder


class SpeechEncoderError(LatticeTalkError):
    """A speech encoder checkpoint is missing, unsupported, or cannot be loaded."""


# ------------------------------------------------------------------------------------------------ layer mixing

_LAYER_WEIGHTS_CLASS: type | None = None


def _layer_weights_class() -> type:
    """Build :class:`LayerWeights` on first use, so importing this module does not import torch."""
    global _LAYER_WEIGHTS_CLASS
    if _LAYER_WEIGHTS_CLASS is None:
        import torch

        class LayerWeights(torch.nn.Module):
            """A learned softmax-weighted sum of an encoder's hidden states (SUPERB-style layer mixing).

            One logit per hidden state (the conv/positional output plus one per transformer layer), zero at
            start (a plain average). The decoder owns and trains it; the encoder itself stays frozen."""

            def __init__(self, n_states: int):
                super().__init__()
                if n_states < 1:
                    raise ValueError(f"need at least one hidden state, got {n_states}")
                self.logits = torch.nn.Parameter(torch.zeros(n_states))

            def weights(self) -> torch.Tensor:
                return torch.softmax(self.logits, dim=0)

            def forward(self, stacked: torch.Tensor) -> torch.Tensor:
                """``stacked`` (n_states, ..., H) → (..., H)."""
                if stacked.shape[0] != self.logits.shape[0]:
                    raise ValueError(f"expected {self.logits.shape[0]} hidden states, got {stacked.shape[0]}")
                w = self.weights().to(stacked.dtype)
                return torch.tensordot(w, stacked, dims=([0], [0]))

        LayerWeights.__module__, LayerWeights.__qualname__ = __name__, "LayerWeights"  # picklable by name
        _LAYER_WEIGHTS_CLASS = LayerWeights
    return _LAYER_WEIGHTS_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: ``from .encoder import LayerWeights`` imports torch only then
    if name == "LayerWeights":
        return _layer_weights_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------ frame geometry


def conv_output_length(n_samples: int, kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Frames the conv feature extractor makes from ``n_samples`` (no padding): 0 if shorter than its receptive field."""
    length = n_samples
    for k, s in zip(kernels, strides):
        if length < k:
            return 0
        length = (length - k) // s + 1
    return length


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples one output frame of the conv stack sees (400 for the standard wav2vec 2.0 stack)."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def n_video_frames(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames covering ``n_samples`` of audio: frame ``j`` at ``j / fps`` s, the corpus articulation's count."""
    return max(1, int(np.ceil(n_samples / sample_rate * fps)))


def frames_at(features: Any, n_frames: int, fps: float, feature_fps: float = 50.0, feature_offset: float = 0.0) -> Any:
    """Linear interpolation of ``features`` (T, H) at ``feature_fps`` to ``n_frames`` video frames at ``fps``.

    Output frame ``j`` is the feature value at time ``j / fps``: feature frame ``i`` stands for time
    ``feature_offset + i / feature_fps`` (the encoder's receptive-field centre, see
    :attr:`SpeechEncoder.feature_offset`); times outside the features take the nearest frame. Works on a torch
    tensor (differentiable, same device and dtype) or a numpy array (returns numpy)."""
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if not fps > 0 or not feature_fps > 0:
        raise ValueError(f"fps and feature_fps must be positive, got {fps!r} and {feature_fps!r}")
    n_frames = int(n_frames)
    if isinstance(features, np.ndarray):
        import torch

        return frames_at(torch.from_numpy(features), n_frames, fps, feature_fps, feature_offset).numpy()
    import torch

    if features.ndim != 2 or features.shape[0] < 1:
        raise ValueError(f"features must be (T, H) with T >= 1, got {tuple(features.shape)}")
    t = features.shape[0]
    times = torch.arange(n_frames, dtype=torch.float64) / fps
    position = ((times - feature_offset) * feature_fps).clamp(0.0, t - 1)
    i0 = position.floor().long().clamp(max=t - 1)
    i1 = (i0 + 1).clamp(max=t - 1)
    w = (position - i0.to(torch.float64)).to(features.dtype).to(features.device).unsqueeze(1)
    i0, i1 = i0.to(features.device), i1.to(features.device)
    return features[i0] * (1.0 - w) + features[i1] * w


# ------------------------------------------------------------------------------------------------ the encoder


class SpeechEncoder:
    """A frozen SSL speech model plus the choice of layer(s) it outputs.

    ``layer``: an int picks ``hidden_states[layer]`` (0 = the input to the first transformer layer, negative
    counts from the end), ``"last"`` the final hidden state, ``"weighted"`` a learned softmax-weighted sum of all
    hidden states through :attr:`layer_weights` (a :class:`LayerWeights` module the decoder trains; gradients
    reach it through :meth:`encode`, never the frozen model)."""

    def __init__(self, model: Any, config: Any, layer: int | str = "weighted", normalize: bool = False,
                 sample_rate: int = SAMPLE_RATE, source: str = "", device: str = "cpu"):
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.config = config
        self.model_type: str = config.model_type
        self.source = str(source)
        self.device = device
        self.normalize = bool(normalize)
        self.sample_rate = int(sample_rate)
        self.kernels = tuple(int(k) for k in config.conv_kernel)
        self.strides = tuple(int(s) for s in config.conv_stride)
        self.hop = int(math.prod(self.strides))  # samples per output frame (320 for the standard stack)
        self.receptive_field = receptive_field(self.kernels, self.strides)
        self.hidden_size = int(config.hidden_size)
        if int(config.num_hidden_layers) < 1:
            raise SpeechEncoderError(f"{source or 'the model'}: has no transformer layers; a speech encoder needs one or more")
        self.n_hidden_states = int(config.num_hidden_layers) + 1
        self.layer = self._check_layer(layer)
        self.layer_weights = _layer_weights_class()(self.n_hidden_states).to(device) if self.layer == "weighted" else None

    # -- geometry
    @property
    def fps(self) -> float:
        """Feature frames per second (50.0 for 16 kHz and a total conv stride of 320)."""
        return self.sample_rate / self.hop

    @property
    def feature_offset(self) -> float:
        """Seconds from the start of the audio to the centre of feature frame 0's receptive field."""
        return self.receptive_field / 2.0 / self.sample_rate

    def n_features(self, n_samples: int) -> int:
        """Frames :meth:`encode` returns for ``n_samples`` of audio (chunked or not)."""
        return conv_output_length(int(n_samples), self.kernels, self.strides)

    def frames_at(self, features: Any, n_frames: int, fps: float) -> Any:
        """:func:`frames_at` with this encoder's frame rate and offset."""
        return frames_at(features, n_frames, fps, feature_fps=self.fps, feature_offset=self.feature_offset)

    def parameters(self) -> Iterator[Any]:
        """The trainable parameters: the layer weights when ``layer == "weighted"``, else none."""
        return iter(()) if self.layer_weights is None else self.layer_weights.parameters()

    def to(self, device: str) -> "SpeechEncoder":
        self.model.to(device)
        if self.layer_weights is not None:
            self.layer_weights.to(device)
        self.device = device
        return self

    # -- encoding
    def encode(self, samples: np.ndarray, chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
               overlap_seconds: float = DEFAULT_OVERLAP_SECONDS) -> "torch.Tensor":
        """``samples`` (N,) float at :attr:`sample_rate` → features (T, H), ``T == n_features(N)``.

        Runs the model without gradients, chunk by chunk; with ``layer == "weighted"`` the mixing is done under
        the caller's grad mode, so a decoder's loss reaches :attr:`layer_weights`."""
        import torch

        layer_weights = self.layer_weights

        def run(chunk: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                if self.layer == "last":
                    return self.model(chunk).last_hidden_state[0]
                states = self.model(chunk, output_hidden_states=True).hidden_states
                if self.layer != "weighted":
                    return states[self.layer][0]
                stacked = torch.stack([s[0] for s in states])  # (L+1, T, H)
            return layer_weights(stacked)

        return self._chunked(samples, run, chunk_seconds, overlap_seconds)

    def hidden_states(self, samples: np.ndarray, chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                      overlap_seconds: float = DEFAULT_OVERLAP_SECONDS) -> "torch.Tensor":
        """All hidden states, (n_hidden_states, T, H), without gradients: cache these to train a decoder's layer
        weights without running the encoder every epoch (memory: n_hidden_states × T × H floats)."""
        import torch

        def run(chunk: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.stack([s[0] for s in self.model(chunk, output_hidden_states=True).hidden_states])

        return self._chunked(samples, run, chunk_seconds, overlap_seconds)

    def _chunked(self, samples: np.ndarray, run, chunk_seconds: float, overlap_seconds: float) -> "torch.Tensor":
        import torch

        from ..audio import Audio, iter_chunks

        x = self._prepare(samples)
        n = x.shape[0]
        expected = self.n_features(n)
        # Chunk starts on a frame boundary (a multiple of the hop), so every chunk's frames are frames of the whole.
        chunk = max(1, round(chunk_seconds * self.sample_rate / self.hop)) * self.hop
        overlap = round(overlap_seconds * self.sample_rate / self.hop) * self.hop
        if n > chunk:
            need = self.receptive_field + 2 * self.hop
            if overlap < need or overlap >= chunk:
                raise ValueError(f"overlap_seconds must be at least {need / self.sample_rate:g} s (the receptive field) "
                                 f"and shorter than the chunk, got {overlap_seconds!r} with chunk_seconds {chunk_seconds!r}")
        half = overlap // self.hop // 2
        pieces = []
        cut = 0  # first frame not yet emitted
        windows = list(iter_chunks(Audio(x, self.sample_rate), chunk / self.sample_rate, overlap / self.sample_rate))
        for index, (start, window) in enumerate(windows):
            first = start // self.hop  # this chunk's frame 0 in whole-utterance frames
            out = run(torch.from_numpy(np.ascontiguousarray(window))[None].to(self.device))
            frames = out.shape[-2]
            if frames != self.n_features(window.shape[0]):
                raise SpeechEncoderError(f"{self.source}: the model made {frames} frames from {window.shape[0]} samples, "
                                         f"its config says {self.n_features(window.shape[0])}; the checkpoint's config "
                                         "does not match its conv stack")
            if index + 1 < len(windows):
                end = windows[index + 1][0] // self.hop + half  # seam: half the overlap from each side
            else:
                end = first + frames
            pieces.append(out[..., cut - first : end - first, :])
            cut = end
        features = torch.cat(pieces, dim=-2) if len(pieces) > 1 else pieces[0]
        if features.shape[-2] != expected:  # pragma: no cover - guarded by the geometry above
            raise SpeechEncoderError(f"chunked encoding made {features.shape[-2]} frames, expected {expected}")
        return features

    def _prepare(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        if x.ndim != 1:
            raise LatticeTalkError(f"speech samples must be mono, shape (N,), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise LatticeTalkError(f"speech samples must be float in [-1, 1], got dtype {x.dtype}")
        if x.shape[0] < self.receptive_field:
            raise LatticeTalkError(f"{x.shape[0] / self.sample_rate * 1000:.0f} ms of audio is shorter than the speech "
                                   f"encoder's {self.receptive_field / self.sample_rate * 1000:.0f} ms window")
        if not np.isfinite(x).all():
            raise LatticeTalkError("speech samples hold NaN or inf")
        if self.normalize:  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, over the whole utterance
            x64 = x.astype(np.float64)
            x = (x64 - x64.mean()) / np.sqrt(x64.var() + 1e-7)
        return x.astype(np.float32, copy=False)

    def _check_layer(self, layer: int | str) -> int | str:
        if layer in ("last", "weighted"):
            return layer
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise LatticeTalkError(f"speech encoder layer must be an integer, 'last' or 'weighted', got {layer!r}")
        n = self.n_hidden_states
        if not -n <= layer < n:
            raise LatticeTalkError(f"speech encoder layer {layer} is out of range: {self.source or 'the model'} has "
                                   f"{n} hidden states (0–{n - 1})")
        return int(layer) % n

    def __repr__(self) -> str:
        return (f"SpeechEncoder({self.model_type}, {self.source!r}, layer={self.layer!r}, hidden={self.hidden_size}, "
                f"states={self.n_hidden_states}, fps={self.fps:g}, normalize={self.normalize})")


# ------------------------------------------------------------------------------------------------ loading


def load_encoder(source: str | os.PathLike[str], layer: int | str = "weighted", device: str = "cpu",
                 allow_download: bool = False, plain_torch: bool = True) -> SpeechEncoder:
    """A :class:`SpeechEncoder` from a checkpoint folder or (``allow_download=True``, or already cached) a hub id.

    With ``allow_download=False`` (the default) nothing touches the network: ``HF_HUB_OFFLINE=1`` is set while
    loading and every call passes ``local_files_only=True``; a hub id that is not in the local cache raises one
    :class:`SpeechEncoderError` saying what to download and where to point the add-on.

    ``plain_torch``: a folder holding our own log-mel front-end encoder runs through :mod:`.light_encoder`
    (the same hidden states without importing transformers); ``False`` always gives the transformers model
    (to save it again, or to train it)."""
    from . import light_encoder

    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir() and plain_torch and light_encoder.fits(path):  # fits() checked config.json and the weights file
        try:
            model, config = light_encoder.load(path)
        except Exception as exc:  # a damaged file or config (safetensors, torch and json raise their own types)
            raise SpeechEncoderError(f"{path}: cannot load the wav2vec2 weights ({type(exc).__name__}: {exc})") from exc
        return _speech_encoder(model, config, str(path), path, layer, device, local_only=True)
    if path.is_dir():
        return _load(str(path), path, layer, device, allow_download=False)
    if path.exists():
        raise SpeechEncoderError(f"{path}: is a file; the speech encoder is a folder with config.json and "
                                 f"model.safetensors (as save_pretrained writes it). Point {_SETTING} at the folder")
    if not _HUB_ID.match(text) or text.startswith(("./", "../", "~")):
        raise SpeechEncoderError(f"{text}: speech encoder folder not found; check the path in {_SETTING}")
    return _load(text, None, layer, device, allow_download)


def _load(source: str, folder: Path | None, layer: int | str, device: str, allow_download: bool) -> SpeechEncoder:
    if folder is not None:
        _check_folder(folder)
    with offline_hub(allow_download):
        import transformers

        from . import frontend

        local_only = not allow_download
        try:
            config = transformers.AutoConfig.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError, KeyError) as exc:
            if folder is not None:
                raise SpeechEncoderError(f"{folder}: cannot read config.json ({exc})") from exc
            raise _not_available(source, allow_download, exc) from exc
        model_type = getattr(config, "model_type", None)
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise _unsupported(source, model_type)
        config_name, model_name = SUPPORTED_MODEL_TYPES[model_type]
        if type(config).__name__ != config_name:  # pragma: no cover - AutoConfig maps model_type to this class
            config = getattr(transformers, config_name).from_pretrained(source, local_files_only=local_only)
        model_class = getattr(transformers, model_name)
        try:
            with quiet_transformers():  # a pretraining checkpoint's unused quantizer is expected: no warning
                model, info = model_class.from_pretrained(source, config=config, local_files_only=local_only,
                                                          use_safetensors=True, output_loading_info=True)
        except Exception as exc:  # a damaged file raises safetensors' or torch's own error types
            if folder is not None:
                raise SpeechEncoderError(f"{folder}: cannot load the {model_type} weights ({type(exc).__name__}: {exc})") from exc
            raise _not_available(source, allow_download, exc) from exc
        frontend.install(model)  # a fixed log-mel front end has no weights in the checkpoint
        missing = [k for k in info.get("missing_keys", ()) if not k.endswith(_OPTIONAL_KEYS)
                   and not frontend.is_replaced_key(config, k)]
        if missing:
            raise SpeechEncoderError(f"{source}: the checkpoint lacks {len(missing)} of the {model_name}'s weights "
                                     f"(e.g. {sorted(missing)[:3]}); it is not a {model_type} encoder checkpoint")
        return _speech_encoder(model.float(), config, source, folder, layer, device, local_only)


def _speech_encoder(model: Any, config: Any, source: str, folder: Path | None, layer: int | str, device: str,
                    local_only: bool) -> SpeechEncoder:
    normalize, rate = _feature_extractor_settings(source, folder, config, local_only)
    if rate != SAMPLE_RATE:
        raise SpeechEncoderError(f"{source}: the model expects {rate} Hz audio; LatticeTalk feeds {SAMPLE_RATE} Hz")
    return SpeechEncoder(model, config, layer=layer, normalize=normalize, sample_rate=rate, source=source, device=device)


def _check_folder(folder: Path) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise SpeechEncoderError(f"{folder}: no config.json; a speech encoder folder is what "
                                 f"`save_pretrained` (or `hf download <model id> --local-dir {folder}`) writes")
    config = read_json(config_path, "model config", MAX_CONFIG_BYTES, "copy the encoder folder again", SpeechEncoderError)
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise _unsupported(str(folder), model_type)
    if not ((folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()):
        hint = ""
        if (folder / "pytorch_model.bin").is_file():
            hint = (" It has pytorch_model.bin, a pickle, which is not loaded (pickles can run code): convert it once with "
                    "`python -c \"import transformers as t; t.AutoModel.from_pretrained('DIR').save_pretrained('DIR')\"` "
                    "in a trusted environment.")
        raise SpeechEncoderError(f"{folder}: no model.safetensors.{hint}")


def _feature_extractor_settings(source: str, folder: Path | None, config: Any, local_only: bool) -> tuple[bool, int]:
    """(do_normalize, sampling_rate) from preprocessor_config.json, else from the config's feat_extract_norm."""
    path: Path | None = None
    if folder is not None:
        path = folder / "preprocessor_config.json"
    else:
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, "preprocessor_config.json", local_files_only=local_only))
        except Exception:  # absent from the repo or the cache: fall back on the config
            path = None
    if path is not None and path.is_file():
        pre = read_json(path, "feature-extractor config", MAX_CONFIG_BYTES, "copy the encoder folder again", SpeechEncoderError)
        try:
            return bool(pre.get("do_normalize", True)), int(pre.get("sampling_rate", SAMPLE_RATE))
        except (ValueError, TypeError, AttributeError) as exc:
            raise SpeechEncoderError(f"{path}: not a readable feature-extractor config ({exc})") from exc
    return getattr(config, "feat_extract_norm", "group") == "layer", SAMPLE_RATE


def _not_available(source: str, allow_download: bool, exc: Exception) -> SpeechEncoderError:
    name = source.split("/")[-1]
    if not allow_download:
        return SpeechEncoderError(
            f"{source} is not in the local cache and downloads are off: run `hf download {source} --local-dir "
            f"<dir>/{name}` (or `huggingface-cli download ...` with older huggingface_hub) on a machine with internet, "
            f"copy the folder here and point {_SETTING} at it"
        )
    return SpeechEncoderError(f"{source}: could not download the speech encoder ({type(exc).__name__}: {exc}); check "
                              f"the model id and the connection, or download it elsewhere and point {_SETTING} at the folder")


def _unsupported(source: str, model_type: Any) -> SpeechEncoderError:
    return SpeechEncoderError(
        f"{source}: model_type {model_type!r} is not a supported speech encoder; LatticeTalk loads "
        f"{', '.join(sorted(SUPPORTED_MODEL_TYPES))} checkpoints (wav2vec 2.0, HuBERT, WavLM) and never runs a "
        "checkpoint's own code"
    )
