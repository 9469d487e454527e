"""Our own encoder's forward pass in plain torch, so generating a take does not import ``transformers``.

Importing transformers 5 costs ~2.5 s on two cores (it pulls in torch._dynamo, torch.distributed.tensor, sympy and
scipy.optimize at model import), which is half of the 5 s a fresh ``generate`` on 10 s of audio may take; running
the encoder itself takes 0.1 s. The shipped encoder is a small wav2vec 2.0 with the fixed log-mel front end and
pre-LN ("stable layer norm") transformer layers, so its inference is short: feature projection → positional
convolution (weight-normed, grouped) → N × [LayerNorm → self-attention → residual → LayerNorm → feed-forward →
residual] → final LayerNorm. :class:`LightWav2Vec2` computes exactly that from the checkpoint's own
``config.json`` and ``model.safetensors`` (the same parameter names, loaded with ``safetensors``), and returns
the same hidden states as ``transformers.Wav2Vec2Model`` (tested against it to 1e-5 on a saved random-init
model). Training, pretraining and every other checkpoint (HuBERT, WavLM, conv front ends, post-LN models) go
through transformers; :func:`fits` says which path a folder takes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import LatticeTalkError
from ..validate import MAX_CONFIG_BYTES, read_json
from . import frontend

SUPPORTED_ACTIVATION = "gelu"
POSITIONAL_WEIGHT_KEY = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"


def read_config(folder: Path) -> dict:
    return read_json(folder / "config.json", "model config", MAX_CONFIG_BYTES, "copy the encoder folder again")


def is_light(model) -> bool:
    """Whether ``model`` is this module's encoder (not transformers')."""
    return _MODEL_CLASS is not None and isinstance(model, _MODEL_CLASS)


def fits(folder: Path) -> bool:
    """Whether the checkpoint in ``folder`` is one this module runs: our log-mel front-end wav2vec 2.0, pre-LN."""
    try:
        config = read_config(folder)
    except LatticeTalkError:  # missing or unreadable: the general loader's checks say which
        return False
    if not (isinstance(config, dict) and config.get("model_type") == "wav2vec2"
            and config.get(frontend.FRONT_END_KEY) == frontend.LOG_MEL and config.get("do_stable_layer_norm") is True
            and config.get("hidden_act", "gelu") == SUPPORTED_ACTIVATION
            and config.get("feat_extract_activation", "gelu") == SUPPORTED_ACTIVATION
            and not config.get("adapter_attn_dim") and not config.get("add_adapter")
            and (folder / "model.safetensors").is_file()):
        return False
    try:  # the positional convolution's weight norm as a parametrization (older checkpoints: weight_g / weight_v)
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "np") as weights:
            return any(k.endswith(POSITIONAL_WEIGHT_KEY) for k in weights.keys())
    except Exception:  # unreadable: transformers' loader gives the clear error
        return False


def load(folder: Path) -> tuple[Any, SimpleNamespace]:
    """(model, config) for a folder that :func:`fits`: the model's ``__call__`` matches the transformers model's
    (``output_hidden_states``, ``.hidden_states``, ``.last_hidden_state``)."""
    from safetensors.torch import load_file

    config = SimpleNamespace(**read_config(folder))
    model = _model_class()(config)
    # a pretraining checkpoint holds the model under "wav2vec2." next to its quantizer and projections
    state = {k.removeprefix("wav2vec2."): v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    state = {k: v for k, v in state.items() if not k.startswith(("masked_spec_embed", "quantizer.", "project_"))}
    model.load_state_dict(state, strict=True)
    return model.eval(), config


_MODEL_CLASS: type | None = None


def _block_classes() -> tuple[type, ...]:
    """The encoder's building blocks as torch modules, defined here so that importing this file does not
    import torch: Attention, FeedForward, Layer, PositionalConv, Encoder, Projection."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Attention(nn.Module):
        def __init__(self, width: int, heads: int):
            super().__init__()
            self.heads = heads
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, width = x.shape

            def split(y: torch.Tensor) -> torch.Tensor:  # (B, T, W) → (B, heads, T, W / heads)
                return y.view(b, t, self.heads, width // self.heads).transpose(1, 2)

            out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
            return self.out_proj(out.transpose(1, 2).reshape(b, t, width))

    class FeedForward(nn.Module):
        def __init__(self, width: int, inner: int):
            super().__init__()
            self.intermediate_dense, self.output_dense = nn.Linear(width, inner), nn.Linear(inner, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.output_dense(F.gelu(self.intermediate_dense(x)))

    class Layer(nn.Module):
        def __init__(self, c: SimpleNamespace):
            super().__init__()
            self.attention = Attention(c.hidden_size, c.num_attention_heads)
            self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
            self.feed_forward = FeedForward(c.hidden_size, c.intermediate_size)
            self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))

    class PositionalConv(nn.Module):
        def __init__(self, c: SimpleNamespace):
            super().__init__()
            self.conv = nn.utils.parametrizations.weight_norm(
                nn.Conv1d(c.hidden_size, c.hidden_size, c.num_conv_pos_embeddings, padding=c.num_conv_pos_embeddings // 2,
                          groups=c.num_conv_pos_embedding_groups), name="weight", dim=2)
            self.trim = 1 if c.num_conv_pos_embeddings % 2 == 0 else 0  # an even kernel makes one frame too many

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x.transpose(1, 2))
            return F.gelu(y[..., :y.shape[-1] - self.trim]).transpose(1, 2)

    class Encoder(nn.Module):
        def __init__(self, c: SimpleNamespace):
            super().__init__()
            self.pos_conv_embed = PositionalConv(c)
            self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))
            self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    class Projection(nn.Module):
        def __init__(self, c: SimpleNamespace):
            super().__init__()
            self.projection = nn.Linear(c.conv_dim[-1], c.hidden_size)

    return Attention, FeedForward, Layer, PositionalConv, Encoder, Projection


def _model_class() -> type:
    """Build the torch modules on first use (importing this file does not import torch)."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS
    import torch
    from torch import nn

    blocks = _block_classes()
    Encoder, Projection = blocks[4], blocks[5]

    class LightWav2Vec2(nn.Module):
        """(B, N) waveform → ``.hidden_states`` (the input to layer 1, then each layer's output) and
        ``.last_hidden_state`` (the last output after the final LayerNorm), as transformers 5's ``Wav2Vec2Model``
        with ``do_stable_layer_norm``."""

        def __init__(self, c: SimpleNamespace):
            super().__init__()
            self.config = c
            self.feature_extractor = frontend.log_mel_module()
            self.feature_projection = Projection(c)
            self.encoder = Encoder(c)

        def forward(self, waveform: torch.Tensor, output_hidden_states: bool = False) -> SimpleNamespace:
            x = self.feature_projection.projection(self.feature_extractor(waveform).transpose(1, 2))
            x = x + self.encoder.pos_conv_embed(x)
            states = [x]
            for layer in self.encoder.layers:
                x = layer(x)
                states.append(x)
            return SimpleNamespace(last_hidden_state=self.encoder.layer_norm(x),
                                   hidden_states=tuple(states) if output_hidden_states else None)

    for cls in (*blocks, LightWav2Vec2):
        cls.__module__ = __name__
    _MODEL_CLASS = LightWav2Vec2
    return _MODEL_CLASS
