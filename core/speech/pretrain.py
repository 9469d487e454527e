"""Our own small speech encoder, pretrained self-supervised (the wav2vec 2.0 objective) on the synthetic corpus.

:func:`small_config` is a light wav2vec 2.0: a five-layer conv front end with narrow early layers (32 → 256
channels, kernels 10/8/4/4/4, strides 5/4/4/2/2: total stride 320, so 50 Hz at 16 kHz; receptive field 825
samples, 52 ms), a short positional convolution (32 frames) and a 3-layer, 256-wide pre-LN transformer
(``do_stable_layer_norm``). Most of the cost of wav2vec2-base's front end is its 512-channel early layers at
1.6–3.2 kHz; here they are 32–64 channels. The conv layers use layer norm over channels (``feat_extract_norm=
"layer"``, as wav2vec2-large-lv60) rather than base's group norm over time: every conv feature then depends on its
52 ms of audio only, so chunked encoding of long audio gives the same front-end features as one pass (group norm's
per-channel statistics would be the chunk's). Measured on this machine: 3.0 M parameters, ~0.55 s to encode 60 s
of audio on one CPU thread (wav2vec2-base-sized front end with the same transformer: ~2–5 s).

:func:`pretrain` trains ``Wav2Vec2ForPreTraining`` on random crops of the corpus's training split: masked spans
from transformers' ``_compute_mask_indices``, distractors from ``_sample_negative_indices``, the model's own
contrastive + diversity loss (divided by the number of masked frames), Gumbel temperature annealed from 2.0 to 0.5
over the run, AdamW with linear warm-up and decay, gradient clipping. Crops never mix speakers: each voice's
utterances are joined into one stream (sentence after sentence, as someone reading) and crops are cut from those.
The wav2vec 2.0 paper's feature penalty and front-end gradient scaling are left out.

Checkpoints go to ``out_dir`` every ``save_every`` steps and at the end: ``model.safetensors`` + ``config.json``
(``save_pretrained``), ``preprocessor_config.json`` (the feature extractor: normalised input, 16 kHz), the optimizer
state (``optimizer.pt``, read back with ``torch.load(weights_only=True)``) and ``trainer_state.json`` (step, loss
history, settings). Files are written to a side folder and moved in, the state last, so an interrupted save leaves
the previous checkpoint usable. A run resumes from the last checkpoint. Every step draws its crops, masks,
distractors, dropout and Gumbel noise from generators seeded by (seed, step), so a run is deterministic per seed
and a resumed run repeats exactly what an uninterrupted one does (same thread count assumed).
``load_encoder(out_dir)`` loads the result as a ``Wav2Vec2Model``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio import SPEECH_RATE
from ..errors import LatticeTalkError

FORMAT = "lattice_talk.ssl_pretrain/1"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SAMPLE_RATE = SPEECH_RATE
TEMPERATURE = (2.0, 0.5)  # Gumbel softmax temperature: start, end


def small_config(hidden_size: int = 256, num_layers: int = 3, num_heads: int = 4, intermediate_size: int | None = None,
                 conv_dim: tuple[int, ...] = (32, 64, 128, 256, 256), conv_kernel: tuple[int, ...] = (10, 8, 4, 4, 4),
                 conv_stride: tuple[int, ...] = (5, 4, 4, 2, 2), pos_conv_width: int = 32, pos_conv_groups: int = 16,
                 codevectors_per_group: int = 64, codevector_groups: int = 2, proj_codevector_dim: int = 128,
                 front_end: str = "conv", **overrides: Any):
    """A light ``Wav2Vec2Config`` for :func:`pretrain` (about 3 M parameters with the defaults).

    ``front_end``: ``"conv"`` (the learned conv stack above) or ``"log_mel"`` (a fixed log-mel filterbank,
    :mod:`.frontend`; the conv arguments are then ignored). ``overrides`` go to ``Wav2Vec2Config`` as they are
    (e.g. ``mask_time_prob``, ``num_negatives``)."""
    from transformers import Wav2Vec2Config

    from . import frontend

    if front_end not in ("conv", "log_mel"):
        raise ValueError(f"front_end must be 'conv' or 'log_mel', got {front_end!r}")
    if front_end == "log_mel":
        conv_dim, conv_kernel, conv_stride = (frontend.CONV_GEOMETRY[k] for k in ("conv_dim", "conv_kernel", "conv_stride"))
        overrides = {frontend.FRONT_END_KEY: frontend.LOG_MEL, **overrides}

    if not (len(conv_dim) == len(conv_kernel) == len(conv_stride)):
        raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length")
    settings = dict(
        hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        conv_dim=tuple(conv_dim), conv_kernel=tuple(conv_kernel), conv_stride=tuple(conv_stride), conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=pos_conv_width, num_conv_pos_embedding_groups=pos_conv_groups,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0, final_dropout=0.0, layerdrop=0.0,
        mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2, mask_feature_prob=0.0,
        num_codevectors_per_group=codevectors_per_group, num_codevector_groups=codevector_groups,
        codevector_dim=proj_codevector_dim, proj_codevector_dim=proj_codevector_dim,
        num_negatives=50, contrastive_logits_temperature=0.1, diversity_loss_weight=0.1,
    )
    settings.update(overrides)
    return Wav2Vec2Config(**settings)


# ------------------------------------------------------------------------------------------------ data


def voice_streams(corpus_dir: str | Path, split: str = "train") -> tuple[list[str], list[np.ndarray]]:
    """The split's audio joined per voice (engine:voice), as int16 streams (half the memory of float32)."""
    from ..data.corpus import Corpus

    corpus = Corpus(corpus_dir)
    parts: dict[str, list[np.ndarray]] = {}
    for utterance in corpus.utterances(split):
        if utterance.sample_rate != SAMPLE_RATE:
            raise LatticeTalkError(f"{corpus_dir}: audio at {utterance.sample_rate} Hz; the encoder takes {SAMPLE_RATE} Hz")
        key = f"{utterance.meta.get('engine', '?')}:{utterance.meta.get('voice', utterance.id)}"
        parts.setdefault(key, []).append(np.clip(np.round(utterance.audio * 32767.0), -32768, 32767).astype(np.int16))
    if not parts:
        raise LatticeTalkError(f"{corpus_dir}: no '{split}' utterances to pretrain on")
    names = sorted(parts)
    return names, [np.concatenate(parts[name]) for name in names]


def sample_crops(streams: list[np.ndarray], batch: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """``batch`` crops of ``crop`` samples, each from one stream (chosen by usable length), normalised per crop
    to zero mean and unit variance like the feature extractor does; float32 (batch, crop)."""
    spare = np.array([max(len(s) - crop, 0) for s in streams], dtype=np.float64)
    usable = np.array([len(s) >= crop for s in streams])
    weights = np.where(usable, spare + 1.0, 0.0)
    out = np.empty((batch, crop), np.float32)
    for b in range(batch):
        k = int(rng.choice(len(streams), p=weights / weights.sum()))
        start = int(rng.integers(0, len(streams[k]) - crop + 1))
        x = streams[k][start:start + crop].astype(np.float64) / 32767.0
        out[b] = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    return out


# ------------------------------------------------------------------------------------------------ training


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` updates, then linear decay to 0 at ``steps`` (``step`` counts from 0)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (steps - step) / max(1, steps - warmup))


def gumbel_temperature(step: int, steps: int, start: float = TEMPERATURE[0], end: float = TEMPERATURE[1]) -> float:
    """Exponential annealing from ``start`` at step 0 to ``end`` at the last step."""
    return float(start * (end / start) ** (min(step, steps - 1) / max(1, steps - 1)))


def pretrain(corpus_dir: str | Path, out_dir: str | Path, steps: int, batch_seconds: float = 32.0, seed: int = 0,
             resume: bool = True, progress: Callable[[int, int, dict], None] | None = None, *,
             crop_seconds: float = 4.0, lr: float = 5e-4, warmup: float = 0.1, weight_decay: float = 0.01,
             max_grad_norm: float = 1.0, save_every: int = 200, max_minutes: float | None = None,
             until: int | None = None, config: Any = None) -> list[dict]:
    """Pretrain the small encoder on ``corpus_dir``'s training split into ``out_dir``; returns the loss history.

    ``steps`` is the length of the whole run (it sets the learning-rate and temperature schedules); a call
    stops early at step ``until`` or after ``max_minutes`` (checkpointing there), and the next call with
    ``resume=True`` carries on from the last checkpoint. ``resume=False`` starts over, replacing what is in
    ``out_dir``. Each history entry: step (1-based), loss, contrastive and diversity loss (per masked frame),
    codevector perplexity (of ``num_codevector_groups × num_codevectors_per_group``), Gumbel temperature,
    learning rate, seconds since this call began. ``progress(step, steps, entry)`` is called after every step."""
    from . import frontend

    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not batch_seconds > 0 or not crop_seconds > 0:
        raise ValueError(f"batch_seconds and crop_seconds must be positive, got {batch_seconds!r}, {crop_seconds!r}")
    steps = int(steps)
    stop_at = steps if until is None else min(steps, int(until))
    out = Path(out_dir)
    started = time.perf_counter()
    settings = {"seed": int(seed), "batch_seconds": float(batch_seconds), "crop_seconds": float(crop_seconds)}

    state = _read_state(out) if resume else None
    model, history, start = _initial_model(out, state, settings, seed, config)
    frontend.install(model)
    model.train()
    cfg = model.config

    names, streams = voice_streams(corpus_dir)
    longest = max(len(s) for s in streams)
    crop = min(round(crop_seconds * SAMPLE_RATE), longest)
    batch = max(1, round(batch_seconds / crop_seconds))
    frames = int(model._get_feat_extract_output_lengths(crop))
    if frames <= cfg.mask_time_length:
        raise LatticeTalkError(f"{corpus_dir}: crops of {crop / SAMPLE_RATE:.2f} s give {frames} frames, not more than a "
                               f"mask span ({cfg.mask_time_length}); make a bigger corpus or longer crops")

    optimizer = _optimizer(model, lr, weight_decay, out if state is not None else None)
    warmup_steps = max(1, round(warmup * steps)) if warmup < 1 else int(warmup)

    def save(step: int) -> None:
        _save_checkpoint(out, model, optimizer, {
            "format": FORMAT, "step": step, "steps": steps, "settings": settings,
            "batch": batch, "crop_samples": crop, "frames_per_crop": frames, "lr": lr, "warmup_steps": warmup_steps,
            "voices": len(names), "corpus": str(corpus_dir), "history": history,
        })

    saved_at = start if state is not None else -1
    step = start
    while step < stop_at:
        if max_minutes is not None and time.perf_counter() - started >= max_minutes * 60.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, steps, warmup_steps)
        temperature = gumbel_temperature(step, steps)
        model.set_gumbel_temperature(temperature)
        output, loss, n_masked = _train_step(model, optimizer, streams, batch, crop, frames, int(seed), step, max_grad_norm)
        step += 1
        entry = {
            "step": step, "loss": loss.item(), "contrastive": output.contrastive_loss.item() / n_masked,
            "diversity": output.diversity_loss.item() / n_masked, "perplexity": output.codevector_perplexity.item(),
            "temperature": temperature, "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - started, 3),
        }
        if not math.isfinite(entry["loss"]):
            raise LatticeTalkError(f"pretraining diverged at step {step} (loss {entry['loss']}); lower the learning rate")
        history.append(entry)
        if progress is not None:
            progress(step, steps, entry)
        if save_every and step % save_every == 0:
            save(step)
            saved_at = step
    if saved_at != step:
        save(step)
    return history


def _initial_model(out: Path, state: dict | None, settings: dict, seed: int, config: Any) -> tuple[Any, list[dict], int]:
    """The model to train with its history and first step: the checkpoint in ``out`` when ``state`` is its
    state (its settings must be ``settings``), otherwise a new model initialised from ``seed``."""
    import torch
    from transformers import Wav2Vec2ForPreTraining

    from .hf_hub import offline_hub, quiet_transformers

    if state is not None:
        mismatched = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
        if mismatched:
            raise LatticeTalkError(f"{out}: the checkpoint there was trained with different settings "
                                   f"({', '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in mismatched.items())}); "
                                   "pass the same ones to resume, or start over (resume=False / --no-resume)")
        with offline_hub(False), quiet_transformers():
            model = Wav2Vec2ForPreTraining.from_pretrained(out, local_files_only=True, use_safetensors=True)
        model = model.float()
        history: list[dict] = list(state["history"])
        start = int(state["step"])
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Wav2Vec2ForPreTraining(config if config is not None else small_config())
        history, start = [], 0
    return model, history, start


def _optimizer(model: Any, lr: float, weight_decay: float, resume_from: Path | None) -> Any:
    """AdamW with weight decay on the matrices only (not on biases, norms or the codevectors), with the
    state saved in ``resume_from`` where there is one."""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name or name.endswith("codevectors") else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.98), eps=1e-6)
    if resume_from is not None and (resume_from / OPTIMIZER_FILE).is_file():
        optimizer.load_state_dict(torch.load(resume_from / OPTIMIZER_FILE, weights_only=True))
    return optimizer


def _train_step(model: Any, optimizer: Any, streams: list, batch: int, crop: int, frames: int, seed: int, step: int,
                max_grad_norm: float) -> tuple[Any, Any, float]:
    """One optimizer step on crops, masks and negatives drawn from ``seed`` and ``step`` alone;
    returns the model output, the loss per masked frame and the number of masked frames."""
    import torch
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    cfg = model.config
    step_seed = (seed * 1_000_003 + step) % (2**32)
    x = torch.from_numpy(sample_crops(streams, batch, crop, np.random.default_rng([seed, step])))
    saved_np = np.random.get_state()  # transformers' mask helpers draw from numpy's global generator
    try:
        np.random.seed(step_seed)
        mask = _compute_mask_indices((batch, frames), cfg.mask_time_prob, cfg.mask_time_length,
                                     min_masks=cfg.mask_time_min_masks)
        negatives = _sample_negative_indices((batch, frames), cfg.num_negatives, mask_time_indices=mask)
    finally:
        np.random.set_state(saved_np)
    mask_t = torch.from_numpy(mask)
    with torch.random.fork_rng(devices=[]):  # dropout and Gumbel noise, without disturbing the caller's generator
        torch.manual_seed(step_seed)
        output = model(x, mask_time_indices=mask_t, sampled_negative_indices=torch.from_numpy(negatives).long())
        n_masked = float(mask.sum())
        loss = output.loss / n_masked
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    return output, loss, n_masked


# ------------------------------------------------------------------------------------------------ checkpoints


def _read_state(out: Path) -> dict | None:
    path = out / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LatticeTalkError(f"{path}: unreadable trainer state ({exc}); delete the folder or pass resume=False") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise LatticeTalkError(f"{path}: not a LatticeTalk pretraining state")
    if not (out / "model.safetensors").is_file():
        raise LatticeTalkError(f"{out}: {STATE_FILE} without model.safetensors; delete the folder or pass resume=False")
    return state


def _save_checkpoint(out: Path, model: Any, optimizer: Any, state: dict) -> None:
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from .hf_hub import quiet_transformers

    out.mkdir(parents=True, exist_ok=True)
    side = out / ".checkpoint-tmp"
    if side.exists():
        shutil.rmtree(side)
    side.mkdir()
    with quiet_transformers():
        model.save_pretrained(side)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(side)
    torch.save(optimizer.state_dict(), side / OPTIMIZER_FILE)
    (side / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
    names = sorted(p.name for p in side.iterdir() if p.name != STATE_FILE) + [STATE_FILE]
    for name in names:
        os.replace(side / name, out / name)
    side.rmdir()


def export_encoder(checkpoint_dir: str | Path, out_dir: str | Path) -> Path:
    """The encoder of a pretraining checkpoint as it ships: the bare ``Wav2Vec2Model`` (no quantizer, optimizer
    or trainer state) in fp16 safetensors with its feature-extractor settings; :func:`load_encoder` reads it back
    in fp32. Put it inside a decoder's folder (``speech train --encoder DIR/encoder --out DIR``) so they move as
    one model."""
    from transformers import Wav2Vec2FeatureExtractor

    from .encoder import load_encoder
    from .hf_hub import quiet_transformers

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LatticeTalkError(f"{out}: exists and is not an empty folder; export the encoder into a new folder")
    encoder = load_encoder(checkpoint_dir, layer="last", plain_torch=False)
    side = out.with_name(out.name + ".export-tmp")  # written aside, moved in whole: a failure leaves no half folder
    shutil.rmtree(side, ignore_errors=True)
    with quiet_transformers():
        encoder.model.half().save_pretrained(side)
        Wav2Vec2FeatureExtractor.from_pretrained(str(checkpoint_dir)).save_pretrained(side)
    if out.exists():
        out.rmdir()
    os.replace(side, out)
    return out
