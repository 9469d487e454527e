"""What training the small per-frame heads (:mod:`.frame_head`: the p/b/m detector, the mouth-opening head) shares:
their examples from corpora with a held-out split, the features standardised on the training lines and folded back
into the head's first layer, and the training loop with early stopping on the held-out lines."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from .train import Example, _batch, load_examples


def split_examples(corpora: list[str | Path], split: str, features) -> list[Example]:
    """Every corpus's ``split`` (a corpus may have none: one folder of held-out lines beside training ones)."""
    from ..data.corpus import Corpus

    examples = [ex for corpus in corpora if Corpus(corpus).shards(split)
                for ex in load_examples(corpus, split, features)]
    if not examples:
        raise LatticeTalkError(f"no '{split}' lines in {', '.join(map(str, corpora))}: training needs both training "
                               "and held-out lines ('data voices' and 'data real' keep --heldout-share of them)")
    return examples


def standardize(train: list[Example], heldout: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Each feature to zero mean and unit variance over the training lines, in place; → (mean, std). The encoder's
    states are far from unit scale (its residual stream), and the detector trains slowly on them as they are."""
    stacked = np.concatenate([ex.features[::4] for ex in train]).astype(np.float64)
    mean, std = stacked.mean(0), stacked.std(0) + 1e-3
    for ex in train + heldout:
        ex.features = ((ex.features - mean) / std).astype(np.float16)
    return mean.astype(np.float32), std.astype(np.float32)


def folded(state: dict, scale: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """A head's weights with the standardisation folded into its first (1×1, linear) convolution, so the saved
    head reads the encoder's states as they come: W (x − m) / s + b = (W / s) x + (b − W m / s)."""
    import torch

    if scale is None:
        return state
    mean, std = (torch.from_numpy(a) for a in scale)
    weight = state["inp.weight"] / std[None, :, None]
    return {**state, "inp.weight": weight, "inp.bias": state["inp.bias"] - (weight[:, :, 0] * mean[None]).sum(1)}


def train_head(head, loss: Callable, train: list[Example], heldout: list[Example], epochs: int, steps_per_epoch: int,
               batch_size: int, lr: float, weight_decay: float, seed: int, patience: int, perturb: bool = False,
               progress: Callable[[int, float, float], None] | None = None) -> tuple[dict, dict]:
    """Train ``head`` on windows of ``train`` with ``loss(head, batch)`` (AdamW, cosine schedule), keeping the
    weights of the epoch with the lowest held-out loss (8 fixed held-out batches; stops ``patience`` epochs after it)
    → (those weights, history). ``head`` ends in eval mode with them loaded. ``perturb``: voice perturbation on the
    log-mel bands (``train._batch``). The caller seeds torch before building ``head`` (its initial weights and the
    dropout after them); ``seed`` draws the batches."""
    import torch

    from ..training import optimizer_step

    if epochs < 1 or steps_per_epoch < 1:
        raise LatticeTalkError(f"training needs at least one epoch of at least one step (got {epochs} × "
                               f"{steps_per_epoch}); give --epochs and --steps-per-epoch of 1 or more")
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    eval_rng = np.random.default_rng(seed + 10_000)
    eval_batches = [_batch(heldout, eval_rng, batch_size) for _ in range(8)]
    history = {"train": [], "heldout": [], "best_epoch": -1, "best": float("inf")}
    best_state = None
    for epoch in range(epochs):
        head.train()
        losses = [optimizer_step(head, optimizer, schedule, loss(head, _batch(train, rng, batch_size, perturb=perturb)))
                  for _ in range(steps_per_epoch)]
        head.eval()
        with torch.no_grad():
            held = float(np.mean([float(loss(head, b)) for b in eval_batches]))
        history["train"].append(float(np.mean(losses)))
        history["heldout"].append(held)
        if held < history["best"]:
            history["best"], history["best_epoch"] = held, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        if progress is not None:
            progress(epoch, history["train"][-1], held)
        if epoch - history["best_epoch"] >= patience:
            break
    if best_state is None:
        raise LatticeTalkError("the held-out loss was never finite: nothing to keep; check the corpora's held-out lines")
    head.load_state_dict(best_state)
    return best_state, history
