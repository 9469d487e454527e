"""Mesh ("lattice") convolution on the face-mesh graph: SpiralNet++ spiral convolution, Chebyshev
convolution (CoMA) and a per-frame encoder. Topology is precomputed (``core.motion.topology``) and held
as buffers, so a layer moves with ``.to(device)`` and is saved with the model's state dict.

Features are per vertex, shaped (..., V, C): e.g. 3-D key-point offsets from the neutral plus 2-D
optical flow sampled at the key points (5 channels) for MediaPipe's 478 points.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .topology import FaceMeshGraph


class SpiralConv(nn.Module):
    """y_v = W · concat(x_s for s in spiral(v)) + b — SpiralNet++'s operator (Gong et al., 2019).

    ``spirals``: (V, L) vertex indices, each row starting at its own vertex. Input (B, V, C_in) →
    output (B, V, C_out)."""

    def __init__(self, in_channels: int, out_channels: int, spirals: np.ndarray | torch.Tensor):
        super().__init__()
        spirals = torch.as_tensor(np.asarray(spirals), dtype=torch.long)
        if spirals.ndim != 2:
            raise ValueError(f"spirals must be (V, L) indices, got shape {tuple(spirals.shape)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.register_buffer("spirals", spirals)  # in the state dict: a model loads only onto its own topology
        self.linear = nn.Linear(in_channels * spirals.shape[1], out_channels)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_vertices, _ = x.shape
        if n_vertices != self.spirals.shape[0]:
            raise ValueError(f"input has {n_vertices} vertices, the spiral table {self.spirals.shape[0]}")
        gathered = x[:, self.spirals.reshape(-1)]  # (B, V·L, C)
        return self.linear(gathered.reshape(batch, n_vertices, -1))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, spiral_length={self.spirals.shape[1]}"


def scaled_laplacian(edges: np.ndarray, n_vertices: int) -> np.ndarray:
    """L̃ = 2L/λ_max − I for the normalised Laplacian L = I − D^-½ A D^-½, with λ_max taken as 2:
    L̃ = −D^-½ A D^-½ (dense; the face mesh is small)."""
    adjacency = np.zeros((n_vertices, n_vertices), np.float32)
    adjacency[edges[:, 0], edges[:, 1]] = adjacency[edges[:, 1], edges[:, 0]] = 1.0
    inv_sqrt = 1.0 / np.sqrt(np.maximum(adjacency.sum(axis=1), 1.0))
    return -(inv_sqrt[:, None] * adjacency * inv_sqrt[None, :])


class ChebConv(nn.Module):
    """Chebyshev spectral graph convolution of order K (Defferrard et al.; CoMA's mesh layer).
    ``laplacian``: (V, V) scaled Laplacian (:func:`scaled_laplacian`). (B, V, C_in) → (B, V, C_out)."""

    def __init__(self, in_channels: int, out_channels: int, laplacian: np.ndarray | torch.Tensor, order: int = 3):
        super().__init__()
        if order < 1:
            raise ValueError(f"Chebyshev order must be at least 1, got {order}")
        self.order = order
        self.register_buffer("laplacian", torch.as_tensor(np.asarray(laplacian), dtype=torch.float32))
        self.linear = nn.Linear(in_channels * order, out_channels)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lap = self.laplacian.to(x.dtype)
        terms = [x]
        if self.order > 1:
            terms.append(torch.einsum("uv,bvc->buc", lap, x))
        for _ in range(2, self.order):
            terms.append(2 * torch.einsum("uv,bvc->buc", lap, terms[-1]) - terms[-2])
        return self.linear(torch.cat(terms, dim=-1))


class MeshEncoder(nn.Module):
    """Per-frame mesh-conv encoder: spiral convolutions over the face mesh, then mean and max pooling
    over the vertices → an embedding. Input (..., V, C_in) → (..., embedding)."""

    def __init__(self, in_channels: int = 5, channels: tuple[int, ...] = (16, 32, 64), embedding: int = 128,
                 spiral_length: int = 9, graph: FaceMeshGraph | None = None):
        super().__init__()
        graph = graph or FaceMeshGraph.mediapipe(iris=True)
        spirals = graph.spirals(spiral_length)
        self.n_vertices, self.in_channels = graph.n_vertices, in_channels
        widths = (in_channels, *channels)
        self.convs = nn.ModuleList(SpiralConv(a, b, spirals) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = nn.ELU()
        self.head = nn.Linear(2 * widths[-1], embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        if x.shape[-2:] != (self.n_vertices, self.in_channels):
            raise ValueError(f"expected (..., {self.n_vertices}, {self.in_channels}) features, got {tuple(x.shape)}")
        h = x.reshape(-1, self.n_vertices, self.in_channels)
        for conv in self.convs:
            h = self.activation(conv(h))
        pooled = torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1)
        return self.head(pooled).reshape(*lead, -1)
