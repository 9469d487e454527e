"""Mesh convolution on MediaPipe's face-mesh graph: topology, spiral tables, layers and the encoder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lattice_talk.core.motion.topology import IRIS, N_POINTS, FaceMeshGraph, graph_distances, ordered_one_rings

torch = pytest.importorskip("torch")
from lattice_talk.core.motion.meshconv import ChebConv, MeshEncoder, SpiralConv, scaled_laplacian  # noqa: E402


@pytest.fixture(scope="module")
def graph():
    return FaceMeshGraph.mediapipe(iris=True)


def test_face_mesh_is_one_oriented_surface_with_the_iris(graph):
    tris = graph.triangles
    assert tris.min() == 0 and tris.max() == N_POINTS - 1 and graph.n_vertices == 478
    directed = [(a, b) for t in tris.tolist() for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))]
    assert len(set(directed)) == len(directed)  # consistently oriented, no edge used twice the same way
    assert (graph_distances(tris, N_POINTS, IRIS["right"][0]) >= 0).all()  # iris connected to everything
    plain = FaceMeshGraph.mediapipe(iris=False)
    assert plain.n_vertices == 468 and len(plain.triangles) == 898  # MediaPipe's own tessellation
    rings = ordered_one_rings(tris, N_POINTS)
    for centre, ring in IRIS.values():
        assert sorted(rings[centre]) == sorted(ring)


@pytest.mark.parametrize("length", [9, 20])
def test_spirals_start_at_their_vertex_and_grow_ring_by_ring(graph, length):
    spirals = graph.spirals(length)
    assert spirals.shape == (N_POINTS, length)
    assert (spirals[:, 0] == np.arange(N_POINTS)).all()
    rings = ordered_one_rings(graph.triangles, N_POINTS)
    for v in range(0, N_POINTS, 7):
        dist = graph_distances(graph.triangles, N_POINTS, v)[spirals[v]]
        assert len(set(spirals[v].tolist())) == length  # no repeats on a 478-vertex mesh
        assert (np.diff(dist) >= 0).all()  # ring 0, then ring 1, then ring 2, …
        k = dist.max()
        assert k <= 3 and (dist <= k).all()
        degree = len(rings[v])
        if degree < length:
            assert set(spirals[v, 1:degree + 1].tolist()) == set(rings[v])  # the whole 1-ring, in circle order
    dilated = graph.spirals(5, dilation=2)
    assert (dilated[:, 0] == np.arange(N_POINTS)).all() and (dilated == graph.spirals(10)[:, ::2]).all()


def _permuted_spirals(spirals: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The table of the same mesh with vertex i renamed to position inv[i]: row p is old row perm[p]."""
    inverse = np.argsort(perm)
    return inverse[spirals[perm]]


def test_spiral_conv_is_equivariant_to_vertex_permutation(graph):
    torch.manual_seed(0)
    spirals = graph.spirals(9)
    perm = np.random.default_rng(1).permutation(N_POINTS)
    conv = SpiralConv(5, 7, spirals)
    moved = SpiralConv(5, 7, _permuted_spirals(spirals, perm))
    moved.load_state_dict({**conv.state_dict(), "spirals": moved.spirals})
    x = torch.randn(3, N_POINTS, 5)
    assert torch.allclose(moved(x[:, perm]), conv(x)[:, perm], atol=1e-5)


def test_cheb_conv_is_equivariant_and_local(graph):
    torch.manual_seed(0)
    lap = scaled_laplacian(graph.edges(), N_POINTS)
    perm = np.random.default_rng(2).permutation(N_POINTS)
    conv = ChebConv(5, 4, lap, order=3)
    moved = ChebConv(5, 4, lap[np.ix_(perm, perm)], order=3)
    moved.load_state_dict({**conv.state_dict(), "laplacian": moved.laplacian})
    x = torch.randn(2, N_POINTS, 5)
    assert torch.allclose(moved(x[:, perm]), conv(x)[:, perm], atol=1e-5)
    # Order K reaches K-1 rings: a change at one vertex moves only vertices within 2 hops.
    bumped = x.clone()
    bumped[:, 0] += 1.0
    changed = (conv(bumped) - conv(x)).abs().amax(dim=(0, 2)) > 1e-6
    assert (graph_distances(graph.triangles, N_POINTS, 0)[changed.numpy()] <= 2).all()


def test_encoder_runs_on_a_batch_of_478_point_meshes_and_gradients_flow():
    torch.manual_seed(0)
    encoder = MeshEncoder(in_channels=5, channels=(8, 16), embedding=32)
    frames = torch.randn(2, 6, N_POINTS, 5, requires_grad=True)  # (batch, time, vertices, offset xyz + flow uv)
    out = encoder(frames)
    assert out.shape == (2, 6, 32)
    out.square().mean().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="478"):
        encoder(torch.randn(2, 468, 5))


def test_core_imports_no_torch():
    code = ("import sys, lattice_talk.core, lattice_talk.core.motion, lattice_talk.core.motion.topology, "
            "lattice_talk.core.data.video_clips; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
