"""What every trainer here does per batch (the speech decoder's and the video face model's)."""

from __future__ import annotations

MAX_GRAD_NORM = 1.0


def optimizer_step(model, optimizer, schedule, loss) -> float:
    """Backpropagate ``loss``, clip the gradient norm, step the optimizer and the schedule; the loss's value."""
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    optimizer.step()
    schedule.step()
    return loss.item()
