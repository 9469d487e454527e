"""Motion space → any head's expression, jaw and eyelids, frame by frame (DESIGN.md, *Motion space and retargeting*).

The landmark model. With only the jaw rotated (angle θ about +x), LBS maps each vertex's template + expression
+ pose corrective through a transform that is affine in the rotation R(θ), and the corrective itself is linear in
R(θ) − I; R(θ) is linear in (cos θ, sin θ). So the head's MediaPipe points are exactly

    p(e, θ) = Σ_k φ_k(θ) C_k + Σ_k ψ_k(θ) D_k e,   φ = (1, cos θ, sin θ, cos 2θ, sin 2θ),   ψ = φ[:3],

a trigonometric polynomial in θ that is linear in the expression ``e`` for a fixed θ. :class:`Retargeter` reads
C and D off the head's :class:`LandmarkRig` once (a discrete Fourier fit over equally spaced jaw angles, exact
up to rounding), so a solve never poses a mesh. Units the landmarks cannot see (a zero column of D, e.g. the
default head's ``tongueOut``) and JAW_UNITS are held at 0.

The solve. Per frame, Gauss–Newton on (e, θ) for

    ‖p(e, θ) − y‖² + w²·‖(p_upper − p_lower) − g‖²  [contact frames only] + λ‖e‖²,
    lo ≤ e ≤ hi (the head's expression range), θ in the jaw range,

each step a box-constrained quadratic program solved for all frames at once by block principal pivoting.
``y``: the motion's offsets from its neutral, normalised by its inter-ocular distance, scaled to the head's and
added to the head's own neutral points. ``g``: the motion's own inner-lip vectors (pairs 82–87, 13–14, 312–317)
at the head's scale, the upper point at least CONTACT_MIN_GAP_MM above the lower one. Contact frames are those
whose lip gap at the head's scale is under the closure threshold (1 mm), plus frames whose solved lips cross,
which are solved again with the contact rows ten times heavier each round. So lips that touch in motion space
touch on the head, and never cross. The landmark rows are compressed by a QR factorisation per call (the normal
equations only need the basis's span), so a frame's cost does not grow with the number of points.

Options for a partial fit (the reference-video baseline fits the upper face only): ``units`` solves only the named
units (the rest held at 0), ``depth_weight`` weighs every point's depth coordinate against 1 for x and y (a
monocular tracker's depth is its least certain), and ``brow_weight`` adds one row per brow — the brow points' mean
height over that eye's corners (``BROW_HEIGHTS``), at this weight — so the fit keeps the brows' travel, which a plain
least-squares projection of real brow motion onto the head's brow units shrinks (to ~0.75 on real speakers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .clip import AnimationClip
from .errors import HeadModelError, LatticeTalkError
from .head_model import JOINT_NAMES, HeadModel
from .landmark_rig import LandmarkRig
from .mediapipe_points import BROW_HEIGHTS, EYE_OUTER_CORNERS, LEFT_EYE_LIDS, RIGHT_EYE_LIDS


def _one_blas_thread():
    """The solves are thousands of tiny batched systems: one BLAS thread is fastest, and OpenBLAS's threads
    spinning against torch's (or Blender's) on a small machine made them 20–60× slower (measured: 60 s →
    1 s for 300 frames on 2 busy cores). Without threadpoolctl (Blender's bare Python) nothing is limited."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
from .lip_geometry import CLOSURE_THRESHOLD_MM, INNER_LIP_PAIRS, MM
from .motion_file import MotionTrack

JAW = JOINT_NAMES.index("jaw")
JAW_RANGE = (0.0, 0.6)  # rad about +x: closed rest … wide open
JAW_UNITS = ("jawOpen",)  # sculpted copies of the jaw bone's rotation: the bone carries the jaw, these stay 0
N_ANGLES = 8  # jaw angles sampled for the Fourier fit (degree 2 needs at least 5)
CONTACT_MIN_GAP_MM = 0.1  # a contact target never asks the lower lip to rise above the upper one
CROSSING_MARGIN_MM = 0.01  # a solved inner-lip pair closer than this along +Y (or crossed) counts as crossing
DEFAULT_RIDGE = 1e-6  # λ as a share of the mean squared landmark motion of one expression unit
DEFAULT_LIP_CONTACT_WEIGHT = 10.0  # per contact coordinate, relative to 1 per landmark coordinate
UNCONSTRAINED_STEPS = 2  # Gauss–Newton steps without bounds that find the jaw first
MAX_GAUSS_NEWTON_STEPS = 12
STEP_TOLERANCE = 1e-9  # largest parameter change (units, rad) at which a frame counts as converged
MAX_PIVOTING_ROUNDS = 200
CROSSING_ROUNDS = 3  # re-solves of frames whose lips still cross
FRAME_CHUNK = 256  # frames solved together (bounds the (frames, rows, unknowns) Jacobian's memory)


@dataclass(frozen=True)
class RetargetResult:
    """Per-frame head parameters for a motion track."""

    expression: np.ndarray  # (T, E) in the head's units; JAW_UNITS and units no landmark sees stay 0
    jaw: np.ndarray  # (T,) rad about +x
    eyelids: np.ndarray | None  # (T, 2) left, right closure 0 open … 1 closed, from the motion's lids
    residual_mm: np.ndarray  # (T,) RMS distance of the fitted landmarks from their targets, mm at the head's scale
    contact: np.ndarray  # (T,) bool: frames solved with the lip-contact term
    expression_names: tuple[str, ...]


def _brow_height_rows(ids: list[int]) -> np.ndarray:
    """(2, 3·len(ids)): each brow's mean height (y) over its eye's corners as a linear function of the points' xyz;
    a brow whose points are not all in ``ids`` gets a zero row."""
    rows = np.zeros((len(BROW_HEIGHTS), 3 * len(ids)))
    for row, (brow, corners) in zip(rows, BROW_HEIGHTS.values()):
        if set(brow) | set(corners) <= set(ids):
            for group, sign in ((brow, 1.0), (corners, -1.0)):
                for point in group:
                    row[3 * ids.index(point) + 1] += sign / len(group)
    return rows


def _fourier(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """φ(θ) (T, 5) and dφ/dθ (T, 5); ψ is the first three columns of each."""
    c1, s1, c2, s2 = np.cos(theta), np.sin(theta), np.cos(2 * theta), np.sin(2 * theta)
    phi = np.stack([np.ones_like(theta), c1, s1, c2, s2], axis=-1)
    dphi = np.stack([np.zeros_like(theta), -s1, c1, -2 * s2, 2 * c2], axis=-1)
    return phi, dphi


@dataclass(frozen=True)
class _TrigRows:
    """Linear functions of the landmark coordinates as ``r(e, θ) = const·φ(θ) + Σ_k ψ_k(θ) linear_k e``."""

    const: np.ndarray  # (R, 5)
    linear: np.ndarray  # (3, R, E)

    def take(self, rows: np.ndarray) -> "_TrigRows":
        return _TrigRows(self.const[rows], self.linear[:, rows])

    def map(self, matrix: np.ndarray) -> "_TrigRows":
        """The rows ``matrix @ r``."""
        k, n_rows, n_expr = self.linear.shape
        linear = matrix @ self.linear.transpose(1, 0, 2).reshape(n_rows, k * n_expr)
        return _TrigRows(matrix @ self.const, linear.reshape(-1, k, n_expr).transpose(1, 0, 2))

    def values(self, e: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(T, R) for expressions (T, E) and jaw angles (T,)."""
        phi, _ = _fourier(theta)
        return phi @ self.const.T + np.einsum("tk,tkr->tr", phi[:, :3], self._linear_times(e))

    def jacobian(self, e: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (T, R) and their derivatives (T, R, E + 1) by (e, θ)."""
        phi, dphi = _fourier(theta)
        de = self._linear_times(e)
        values = phi @ self.const.T + np.einsum("tk,tkr->tr", phi[:, :3], de)
        n_rows, n_expr = self.linear.shape[1:]
        d_expression = (phi[:, :3] @ self.linear.reshape(3, -1)).reshape(len(e), n_rows, n_expr)
        d_jaw = dphi @ self.const.T + np.einsum("tk,tkr->tr", dphi[:, :3], de)
        return values, np.concatenate([d_expression, d_jaw[:, :, None]], axis=2)

    def _linear_times(self, e: np.ndarray) -> np.ndarray:
        """(T, 3, R): each linear_k applied to each frame's expression."""
        k, n_rows, n_expr = self.linear.shape
        return (self.linear.reshape(k * n_rows, n_expr) @ e.T).T.reshape(len(e), k, n_rows)


def solve_box_qp(hessian: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``argmin ½xᵀHx − bᵀx`` subject to ``lower ≤ x ≤ upper`` for a batch of positive definite H (T, N, N).

    Block principal pivoting (Júdice & Pires 1994) on all frames at once: solve for the free variables with
    the others at their bounds, then move every variable that breaks a KKT condition to the other set; when
    the count of such variables stops falling, move one at a time (Murty's rule), which cannot cycle.
    ``state`` (T, N) int8 — −1 at the lower bound, +1 at the upper, 0 free — warm-starts the partition and
    the final one is returned with the solution."""
    n_frames, n = b.shape
    state = np.zeros((n_frames, n), np.int8) if state is None else state.copy()
    x = np.empty((n_frames, n))
    scale = np.abs(np.diagonal(hessian, axis1=1, axis2=2)).mean(axis=1)[:, None]
    fewest_bad = np.full(n_frames, n + 1)
    block_tries = np.full(n_frames, 3)
    todo = np.arange(n_frames)
    eye = np.eye(n, dtype=bool)
    for _ in range(MAX_PIVOTING_ROUNDS):
        s, h, rhs = state[todo], hessian[todo], b[todo]
        fixed = s != 0
        at = np.where(s < 0, lower, np.where(s > 0, upper, 0.0))
        # Free rows: H_FF x_F = b_F − H_F,fixed x_fixed; fixed rows: identity, x = bound.
        system = np.where(fixed[:, :, None] | fixed[:, None, :], eye & fixed[:, :, None], h)
        rhs = np.where(fixed, at, rhs - (h @ at[..., None])[..., 0])
        xs = np.linalg.solve(system, rhs[..., None])[..., 0]
        grad = (h @ xs[..., None])[..., 0] - b[todo]
        tol = 1e-9 * (1.0 + np.abs(xs))
        bad = ((s == 0) & ((xs < lower - tol) | (xs > upper + tol))) | \
              ((s < 0) & (grad < -1e-9 * scale[todo])) | ((s > 0) & (grad > 1e-9 * scale[todo]))
        x[todo] = xs
        n_bad = bad.sum(axis=1)
        going = n_bad > 0
        if not going.any():
            return x, state
        todo, bad, xs, n_bad = todo[going], bad[going], xs[going], n_bad[going]
        improved = n_bad < fewest_bad[todo]
        fewest_bad[todo] = np.minimum(fewest_bad[todo], n_bad)
        block_tries[todo] = np.where(improved, 3, block_tries[todo] - 1)
        single = (~improved) & (block_tries[todo] < 0)
        last = n - 1 - np.argmax(bad[:, ::-1], axis=1)
        bad[single] = False
        bad[single, last[single]] = True
        s = state[todo]
        s[bad] = np.where(s[bad] != 0, 0, np.where(xs[bad] < lower[np.nonzero(bad)[1]], -1, 1))
        state[todo] = s
    raise LatticeTalkError("box-constrained solve did not converge; the expression basis is degenerate")


class Retargeter:
    """Solves a head's expression and jaw (and reports eyelids) from motion-space tracks.

    ``betas``: the head's identity shape (default: its template). ``points``: the MediaPipe points to fit
    (default: all the head embeds); a motion track is fitted on those of them it carries. ``ridge``: Tikhonov
    weight λ as a share of one unit's mean squared landmark motion (keeps PCA expressions such as FLAME's small
    where the points do not pin them). ``lip_contact_weight``: weight of each inner-lip contact coordinate
    against 1 per landmark coordinate; 0 turns the lip-contact term off. ``jaw_range``: bounds of the jaw angle.
    ``units``, ``depth_weight``, ``brow_weight``: a partial fit, see the module's docstring."""

    def __init__(self, head: HeadModel, betas: np.ndarray | None = None, points: Sequence[int] | None = None,
                 lip_contact_weight: float = DEFAULT_LIP_CONTACT_WEIGHT, ridge: float = DEFAULT_RIDGE,
                 jaw_range: tuple[float, float] = JAW_RANGE, units: Sequence[str] | None = None,
                 depth_weight: float = 1.0, brow_weight: float = 0.0):
        rig = LandmarkRig(head, betas)
        embedded = [int(i) for i in rig.mediapipe_index]
        for corner in EYE_OUTER_CORNERS:
            if corner not in embedded:
                raise HeadModelError(f"{head.head_id}: the landmark embedding lacks MediaPipe point {corner} "
                                     "(outer eye corner), which sets the head's face scale for retargeting")
        wanted = embedded if points is None else [int(i) for i in points]
        missing = sorted(set(wanted) - set(embedded))
        if missing:
            raise HeadModelError(f"{head.head_id}: MediaPipe points {missing[:8]} are not in the landmark embedding")
        self.head_id = head.head_id
        self.expression_names = head.expression_names
        self.lip_contact_weight = float(lip_contact_weight)
        self.depth_weight, self.brow_weight = float(depth_weight), float(brow_weight)
        rows = _sample_landmark_model(rig, head.n_expression)  # all embedded points, metres
        neutral = rows.values(np.zeros((1, head.n_expression)), np.zeros(1))[0].reshape(-1, 3)
        self.face_scale = float(np.linalg.norm(neutral[embedded.index(EYE_OUTER_CORNERS[0])]
                                               - neutral[embedded.index(EYE_OUTER_CORNERS[1])]))
        # Everything below works in face-scale units, so tolerances and weights do not depend on head size.
        reach = np.abs(rows.linear).max(axis=(0, 1))
        unknown = sorted(set(units or ()) - set(head.expression_names))
        if unknown:
            raise HeadModelError(f"{head.head_id}: no expression units {unknown[:8]} to solve")
        solved = np.array([name not in JAW_UNITS and reach[i] > 1e-9 * reach.max() and (units is None or name in units)
                           for i, name in enumerate(head.expression_names)])
        self.solved_units = np.flatnonzero(solved)
        self.held_units = tuple(name for name, s in zip(head.expression_names, solved) if not s)
        keep = np.concatenate([np.arange(3 * i, 3 * i + 3) for i in (embedded.index(p) for p in wanted)])
        self.point_ids = np.array(wanted, np.int64)
        self._column = {p: k for k, p in enumerate(wanted)}
        self._rows = _TrigRows(rows.const[keep] / self.face_scale, rows.linear[:, keep][:, :, self.solved_units] / self.face_scale)
        self._neutral = neutral[[embedded.index(p) for p in wanted]]  # (L, 3) metres
        at_rest = self._rows.linear[0] + self._rows.linear[1]  # ψ(0) = (1, 1, 0)
        self._ridge = float(ridge) * float(np.mean(np.sum(at_rest**2, axis=0)))
        n = len(self.solved_units)
        self._lower = np.append(np.full(n, head.expression_range[0], float), jaw_range[0])
        self._upper = np.append(np.full(n, head.expression_range[1], float), jaw_range[1])

    # ------------------------------------------------------------------ public
    def target_points(self, motion: MotionTrack) -> tuple[np.ndarray, np.ndarray]:
        """The motion moved onto this head: (T, P, 3) metres and the MediaPipe ids (P,) of its columns,
        the fitted points the motion carries."""
        ids = np.array([i for i in self.point_ids if np.any(motion.point_ids == i)], np.int64)
        if not len(ids):
            raise LatticeTalkError(f"the motion track carries none of the {len(self.point_ids)} points {self.head_id} embeds")
        offsets = motion.normalised_offsets()[:, [motion.column(i) for i in ids]]
        neutral = self._neutral[[self._column[int(i)] for i in ids]]
        return neutral[None] + offsets * self.face_scale, ids

    def retarget(self, motion: MotionTrack) -> RetargetResult:
        """Expression, jaw and eyelids of this head for every frame of ``motion`` (which needs a neutral)."""
        with _one_blas_thread():
            return self._retarget(motion)

    def _retarget(self, motion: MotionTrack) -> RetargetResult:
        # 1. Targets: the motion's normalised offsets at this head's scale on this head's neutral points.
        targets, ids = self.target_points(motion)
        columns = np.array([self._column[int(i)] for i in ids])
        rows = self._rows.take((3 * columns[:, None] + np.arange(3)).ravel())
        y = targets.reshape(len(targets), -1).astype(np.float64) / self.face_scale
        # 2. The fitted rows: the points (depth weighted) and the brow heights; compressed by a QR factorisation,
        #    with Z = [const | linear] = QR, ‖Z a − y‖² = ‖R a − Qᵀy‖² + const.
        #    Weights scale rows elementwise (a dense diagonal matrix was a (3P)² product on every speech take).
        weight = np.tile([1.0, 1.0, self.depth_weight], len(ids))
        fitted_rows, y_fit = _TrigRows(rows.const * weight[:, None], rows.linear * weight[None, :, None]), y * weight
        if self.brow_weight > 0:
            brow = self.brow_weight * _brow_height_rows(list(ids))
            brow_rows = rows.map(brow)
            fitted_rows = _TrigRows(np.concatenate([fitted_rows.const, brow_rows.const]),
                                    np.concatenate([fitted_rows.linear, brow_rows.linear], axis=1))
            y_fit = np.concatenate([y_fit, y @ brow.T], axis=1)
        basis = np.concatenate([fitted_rows.const, fitted_rows.linear.transpose(1, 0, 2).reshape(y_fit.shape[1], -1)], axis=1)
        q, _ = np.linalg.qr(basis)
        data = fitted_rows.map(q.T)
        y_compressed = y_fit @ q
        # 3. Lip-contact rows for the inner-lip pairs the motion carries.
        pairs = [(u, l) for u, l in INNER_LIP_PAIRS if u in ids and l in ids and self.lip_contact_weight > 0]
        lips, lip_targets, contact = self._lip_rows(rows, list(ids), pairs, motion)
        # 4. Gauss–Newton with box-constrained steps, chunk by chunk.
        lip_weight = np.where(contact, self.lip_contact_weight, 0.0)
        x = self._solve(data, y_compressed, lips, lip_targets, lip_weight)
        # 5. Frames whose lips cross (or all but): solve them again with the contact rows, ten times heavier each round.
        for _ in range(CROSSING_ROUNDS):
            vertical = lips.values(x[:, :-1], x[:, -1]).reshape(len(y), len(pairs), 3)[:, :, 1] * self.face_scale * MM
            crossed = (vertical < CROSSING_MARGIN_MM).any(axis=1)
            if not crossed.any():
                break
            lip_weight[crossed] = np.maximum(10 * lip_weight[crossed], self.lip_contact_weight)
            x[crossed] = self._solve(data, y_compressed[crossed], lips, lip_targets[crossed], lip_weight[crossed])
        # 6. Outputs in the head's units.
        fitted = rows.values(x[:, :-1], x[:, -1])
        residual_mm = np.sqrt(np.mean(((fitted - y) ** 2).reshape(len(y), -1, 3).sum(axis=2), axis=1)) * self.face_scale * MM
        expression = np.zeros((len(y), len(self.expression_names)), np.float32)
        expression[:, self.solved_units] = x[:, :-1]
        return RetargetResult(expression=expression, jaw=x[:, -1].astype(np.float32), eyelids=eyelid_closure(motion),
                              residual_mm=residual_mm.astype(np.float32), contact=lip_weight > 0,
                              expression_names=self.expression_names)

    # ------------------------------------------------------------------ internals
    def _lip_rows(self, rows: _TrigRows, ids: list[int], pairs: list[tuple[int, int]],
                  motion: MotionTrack) -> tuple[_TrigRows, np.ndarray, np.ndarray]:
        """Rows ``p_upper − p_lower`` per pair (3 each) of ``rows`` (the points ``ids``, xyz each), their targets
        (T, 3·pairs) — the motion's own inner-lip vectors at this head's scale, with the upper lip at least
        CONTACT_MIN_GAP_MM above the lower one — and the contact frames (T,): the motion's lip gap at this
        head's scale is under the closure threshold."""
        difference = np.zeros((3 * len(pairs), rows.const.shape[0]))
        for k, (upper, lower) in enumerate(pairs):
            for axis in range(3):
                difference[3 * k + axis, 3 * ids.index(upper) + axis] = 1.0
                difference[3 * k + axis, 3 * ids.index(lower) + axis] = -1.0
        source = motion.select([i for pair in pairs for i in pair]).astype(np.float64).reshape(motion.n_frames, len(pairs), 2, 3)
        vectors = (source[:, :, 0] - source[:, :, 1]) / motion.face_scale()
        contact = np.linalg.norm(vectors, axis=2).min(axis=1, initial=np.inf) * self.face_scale * MM < CLOSURE_THRESHOLD_MM
        vectors[:, :, 1] = np.maximum(vectors[:, :, 1], CONTACT_MIN_GAP_MM / MM / self.face_scale)
        return rows.map(difference), vectors.reshape(motion.n_frames, -1), contact

    def _solve(self, data: _TrigRows, y: np.ndarray, lips: _TrigRows, lip_targets: np.ndarray,
               lip_weight: np.ndarray) -> np.ndarray:
        """(T, E_solved + 1) parameters, jaw last, for compressed targets ``y`` (T, R) and lip-contact rows
        weighted ``lip_weight`` (T,) per frame."""
        out = np.empty((len(y), len(self._lower)))
        for start in range(0, len(y), FRAME_CHUNK):
            chunk = slice(start, start + FRAME_CHUNK)
            out[chunk] = self._solve_chunk(data, y[chunk], lips, lip_targets[chunk], lip_weight[chunk])
        return out

    def _solve_chunk(self, data: _TrigRows, y: np.ndarray, lips: _TrigRows, lip_targets: np.ndarray,
                     lip_weight: np.ndarray) -> np.ndarray:
        n = len(self._lower)
        ridge = np.append(np.full(n - 1, self._ridge), 0.0)
        contact_weight = lip_weight[:, None, None] ** 2

        def normal_equations(x: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """H and b of the problem linearised at ``x``, written for the new parameters: min ½x'ᵀHx' − bᵀx'."""
            values, jac = data.jacobian(x[:, :-1], x[:, -1])
            lip_values, lip_jac = lips.jacobian(x[:, :-1], x[:, -1])
            jt = jac.transpose(0, 2, 1)
            lip_jt = lip_jac.transpose(0, 2, 1) * contact_weight[frames]
            hessian = jt @ jac + lip_jt @ lip_jac
            hessian[:, np.arange(n), np.arange(n)] += ridge
            b = (hessian @ x[..., None])[..., 0] - (jt @ (values - y[frames])[..., None])[..., 0] \
                - (lip_jt @ (lip_values - lip_targets[frames])[..., None])[..., 0] - ridge * x
            return hessian, b

        frames = np.arange(len(y))
        start = np.clip(np.zeros(n), self._lower, self._upper)
        start[-1] = (self._lower[-1] + self._upper[-1]) / 2  # a half-open jaw
        x = np.tile(start, (len(y), 1))
        # a. Unconstrained Gauss–Newton steps find the jaw; clipped, they seed the bounds' partition.
        for _ in range(UNCONSTRAINED_STEPS):
            hessian, b = normal_equations(x, frames)
            x = np.linalg.solve(hessian, b[..., None])[..., 0]
        state = np.where(x <= self._lower, -1, np.where(x >= self._upper, 1, 0)).astype(np.int8)
        x = np.clip(x, self._lower, self._upper)
        # b. Gauss–Newton steps, each a box-constrained QP warm-started with the previous partition.
        todo = frames
        for _ in range(MAX_GAUSS_NEWTON_STEPS):
            hessian, b = normal_equations(x[todo], todo)
            new, state[todo] = solve_box_qp(hessian, b, self._lower, self._upper, state[todo])
            moving = np.abs(new - x[todo]).max(axis=1) > STEP_TOLERANCE
            x[todo] = new
            todo = todo[moving]
            if not len(todo):
                break
        return x


def _sample_landmark_model(rig: LandmarkRig, n_expression: int) -> _TrigRows:
    """C and D of the module docstring for every embedded point, read off the rig at N_ANGLES jaw angles
    (an exact discrete Fourier fit: the points are a trigonometric polynomial of degree 2 in the angle)."""
    angles = 2 * np.pi * np.arange(N_ANGLES) / N_ANGLES
    phi, _ = _fourier(angles)
    expressions = np.concatenate([np.zeros((1, n_expression)), np.eye(n_expression)])
    pose = np.zeros((N_ANGLES, len(JOINT_NAMES), 3))
    pose[:, JAW, 0] = angles
    points = rig.points(np.repeat(expressions, N_ANGLES, axis=0), np.tile(pose, (n_expression + 1, 1, 1)))
    points = points.reshape(n_expression + 1, N_ANGLES, -1)  # (1 + E, angles, 3L)
    const = np.linalg.pinv(phi) @ points[0]  # (5, 3L)
    linear = np.einsum("ka,eap->kpe", np.linalg.pinv(phi[:, :3]), points[1:] - points[:1])  # (3, 3L, E)
    return _TrigRows(const.T, linear)


def eyelid_closure(motion: MotionTrack) -> np.ndarray | None:
    """(T, 2) left, right eyelid closure, 0 open … 1 closed: one minus the lids' vertical opening (upper minus
    lower lid point along +Y) over the neutral's, so a lid that overshoots the lower one still reads closed;
    None when the track lacks a lid point or a neutral."""
    lids = LEFT_EYE_LIDS + RIGHT_EYE_LIDS
    if motion.neutral is None or not all(np.any(motion.point_ids == i) for i in lids):
        return None
    columns = [motion.column(i) for i in lids]
    now, rest = motion.points[:, columns, 1].astype(np.float64), motion.neutral[columns, 1].astype(np.float64)
    opening, rest_opening = now[:, 0::2] - now[:, 1::2], rest[0::2] - rest[1::2]
    return np.clip(1.0 - opening / np.maximum(rest_opening, 1e-9), 0.0, 1.0).astype(np.float32)


def to_clip(result: RetargetResult, fps: float, start_frame: int, head_id: str) -> AnimationClip:
    """An AnimationClip of the retargeted parameters: expression, jaw as axis-angle about +x, eyelids."""
    jaw = np.zeros((len(result.jaw), 3), np.float32)
    jaw[:, 0] = result.jaw
    return AnimationClip(fps=fps, start_frame=start_frame, head_id=head_id, expression=result.expression,
                         expression_names=result.expression_names, jaw=jaw, eyelids=result.eyelids,
                         provenance={"retarget": {"mean_residual_mm": float(np.mean(result.residual_mm)),
                                                  "contact_frames": int(np.sum(result.contact))}})
