"""Bounded normalizing flows: a fixed box-to-R^d bijection, a standardisation and a zuko flow.

The density of a :class:`BoundedFlow` at a point ``x`` of the prior box ``[lower, upper]`` is

.. math::

    \\log q(x) = \\log q_Z(z) - \\sum_i \\log s_i + \\sum_i \\log \\frac{u_i - l_i}
                 {(x_i - l_i)(u_i - x_i)}

with ``y = logit((x - l) / (u - l)) = log(x - l) - log(u - x)`` (the fixed outer bijection),
``z = (y - m) / s`` (the weighted standardisation fitted on the training data) and ``q_Z`` the
trainable zuko flow with a standard-normal base. Every fixed map's log-Jacobian is part of
``log q``, so ``q`` integrates to one on the box, and it is ``-inf`` outside the box.

The fixed maps are evaluated in float64; the trainable core runs in ``core_dtype`` (float32 by
default, which is 2-3x faster on CPU); the public interface is float64.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import zuko
from torch import Tensor, nn

__all__ = ["FLOW_KINDS", "BoundedFlow", "build_flow", "check_architecture", "parameter_count"]

log = logging.getLogger(__name__)

#: Flow architectures understood by :func:`build_flow`.
FLOW_KINDS = ("nsf", "maf", "realnvp")

#: Relative distance to the box walls below which points are moved onto ``eps`` (keeps the
#: logit finite for points on the boundary).
DEFAULT_EPS = 1e-12

#: Bounds on the architecture, checked by :func:`build_flow` *before* anything is allocated
#: (and by the model loader, so a hostile manifest cannot make it allocate gigabytes).
MAX_DIM = 256
MAX_TRANSFORMS = 64
MAX_LAYERS = 16
MAX_WIDTH = 8192
MAX_BINS = 512
#: Upper bound on the trainable parameters (an estimate, see :func:`parameter_count`).
MAX_PARAMETERS = 50_000_000


def parameter_count(*, kind: str, dim: int, transforms: int, hidden: Sequence[int], bins: int) -> int:
    """Upper estimate of the trainable parameters of :func:`build_flow` (no allocation).

    Every transformation holds one conditioner MLP ``dim -> hidden... -> dim * k`` with
    ``k = 3 bins - 1`` spline parameters per feature (``nsf``) or ``k = 2`` (affine).
    """
    k = 3 * bins - 1 if kind == "nsf" else 2
    sizes = [dim, *hidden, dim * k]
    return transforms * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def check_architecture(
    *, kind: str, dim: int, transforms: int, hidden: Sequence[int], bins: int
) -> None:
    """Raise ``ValueError`` (naming the setting) unless the architecture is within the bounds.

    Types are checked too (``bool`` is not an integer here), so a value read from a file can
    be passed as it is.
    """

    def integer(value, name, lo, hi):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name}: {value} is outside [{lo}, {hi}]")

    if kind not in FLOW_KINDS:
        raise ValueError(f"kind: unknown flow kind {kind!r}; choose one of {', '.join(FLOW_KINDS)}")
    integer(dim, "dim", 1, MAX_DIM)
    integer(transforms, "transforms", 0, MAX_TRANSFORMS)
    integer(bins, "bins", 2, MAX_BINS)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise ValueError(f"hidden: must be a list of integers, got {hidden!r}")
    if not 1 <= len(hidden) <= MAX_LAYERS:
        raise ValueError(f"hidden: {len(hidden)} layers, must be 1 to {MAX_LAYERS}")
    for i, width in enumerate(hidden):
        integer(width, f"hidden[{i}]", 1, MAX_WIDTH)
    count = parameter_count(kind=kind, dim=dim, transforms=transforms, hidden=hidden, bins=bins)
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"hidden: the architecture needs about {count} parameters, more than the limit "
            f"{MAX_PARAMETERS}"
        )


def build_flow(
    *,
    kind: str,
    dim: int,
    transforms: int = 3,
    hidden: Sequence[int] = (64, 64),
    bins: int = 8,
) -> zuko.flows.Flow:
    """Build the trainable part of a flow (standard-normal base) with zuko.

    Parameters
    ----------
    kind : {"nsf", "maf", "realnvp"}
        ``nsf``: autoregressive rational-quadratic spline flow (zuko ``NSF``);
        ``maf``: masked autoregressive affine flow (zuko ``MAF``);
        ``realnvp``: affine coupling flow with alternating checkerboard masks (zuko ``RealNVP``).
    dim : int
        Number of parameters ``D`` (>= 1).
    transforms : int
        Number of transformations. ``0`` gives the identity (a pure standard-normal base),
        which the density tests use.
    hidden : sequence of int
        Widths of the hidden layers of every conditioner network.
    bins : int
        Number of spline bins (``nsf`` only).

    Returns
    -------
    zuko.flows.Flow
        Calling it returns a distribution over ``Tensor (*, D)``.

    Raises
    ------
    ValueError
        Unknown kind, or sizes outside the bounds of :func:`check_architecture` (checked
        before anything is allocated).
    """
    hidden = tuple(hidden)
    check_architecture(kind=kind, dim=dim, transforms=transforms, hidden=hidden, bins=bins)
    if transforms == 0:
        base = zuko.flows.UnconditionalDistribution(
            zuko.distributions.DiagNormal,
            torch.zeros(dim),
            torch.ones(dim),
            buffer=True,
        )
        identity = zuko.flows.UnconditionalTransform(zuko.transforms.IdentityTransform)
        return zuko.flows.Flow([identity], base)
    if kind == "nsf":
        return zuko.flows.NSF(dim, transforms=transforms, hidden_features=hidden, bins=bins)
    if kind == "maf":
        return zuko.flows.MAF(dim, transforms=transforms, hidden_features=hidden)
    if dim == 1:
        # A coupling layer needs two groups of features; in 1-D fall back on the autoregressive
        # affine flow, which is the same family.
        log.warning("realnvp needs dim >= 2; using maf for a 1-D flow")
        return zuko.flows.MAF(dim, transforms=transforms, hidden_features=hidden)
    return zuko.flows.RealNVP(dim, transforms=transforms, hidden_features=hidden)


class BoundedFlow(nn.Module):
    """A normalised density on the box ``[lower, upper]``: logit map, standardisation, flow.

    Parameters
    ----------
    core : zuko.flows.Flow
        The trainable flow over ``Tensor (*, D)`` with a standard-normal base.
    lower, upper : Tensor (D,)
        The prior box (stored in float64).
    shift : Tensor (D,)
    scale : Tensor (D,) or (D, D)
        Standardisation of the logit coordinates: ``z = (y - shift) / scale`` for a vector;
        for a lower-triangular matrix ``L`` (the Cholesky factor of the weighted covariance:
        full whitening) ``z = L^-1 (y - shift)``. Either way a fixed affine map whose
        log-Jacobian ``-sum log diag`` enters the density.
    eps : float
        Relative distance to a wall below which a coordinate is moved to ``eps``.
    core_dtype : torch.dtype
        Dtype of the trainable core (float32 or float64).
    """

    def __init__(
        self,
        core: zuko.flows.Flow,
        *,
        lower: Tensor,
        upper: Tensor,
        shift: Tensor,
        scale: Tensor,
        eps: float = DEFAULT_EPS,
        core_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        f64 = torch.float64
        self.core = core.to(core_dtype)
        self.core_dtype = core_dtype
        self.register_buffer("lower", torch.as_tensor(lower, dtype=f64).clone())
        self.register_buffer("upper", torch.as_tensor(upper, dtype=f64).clone())
        self.register_buffer("shift", torch.as_tensor(shift, dtype=f64).clone())
        self.register_buffer("scale", torch.as_tensor(scale, dtype=f64).clone())
        self.eps = float(eps)
        if not 0.0 < self.eps < 0.5:  # NaN fails too
            raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
        if not bool(torch.all(self.lower < self.upper)):
            raise ValueError("every lower bound must be below its upper bound")
        if self.scale.ndim == 2:
            d = self.lower.shape[0]
            if self.scale.shape != (d, d) or not torch.equal(self.scale, torch.tril(self.scale)):
                raise ValueError("a matrix scale must be a lower-triangular (D, D) Cholesky factor")
            if not bool(torch.all(torch.diagonal(self.scale) > 0)):
                raise ValueError("the Cholesky factor's diagonal must be positive")
        elif not bool(torch.all(self.scale > 0)):
            raise ValueError("standardisation scales must be positive")

    @property
    def dim(self) -> int:
        """Number of parameters ``D``."""
        return int(self.lower.shape[0])

    # ------------------------------------------------------------------ fixed maps (float64)
    def inside(self, x: Tensor) -> Tensor:
        """``BoolTensor (N,)``: whether each row of ``x`` lies in the closed box."""
        return torch.all((x >= self.lower) & (x <= self.upper), dim=-1)

    def to_logit(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map box points to logit space.

        Parameters
        ----------
        x : Tensor (N, D), float64, inside the box

        Returns
        -------
        y : Tensor (N, D), float64
        ladj : Tensor (N,), float64
            ``log |det dy/dx|``.
        """
        width = self.upper - self.lower
        floor = self.eps * width
        a = torch.clamp(x - self.lower, min=floor)  # distance to the lower wall
        b = torch.clamp(self.upper - x, min=floor)  # distance to the upper wall
        y = torch.log(a) - torch.log(b)
        ladj = (torch.log(width) - torch.log(a) - torch.log(b)).sum(dim=-1)
        return y, ladj

    def from_logit(self, y: Tensor) -> Tensor:
        """Inverse of :meth:`to_logit`; the result lies strictly inside the box."""
        width = self.upper - self.lower
        # Evaluate from the nearer wall so that neither tail loses precision.
        x = torch.where(
            y < 0,
            self.lower + width * torch.sigmoid(y),
            self.upper - width * torch.sigmoid(-y),
        )
        lo = torch.nextafter(self.lower, self.upper)
        hi = torch.nextafter(self.upper, self.lower)
        return torch.clamp(x, min=lo, max=hi)

    def to_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Apply both fixed maps: box -> standardised logit space.

        Returns ``z`` (float64, ``(N, D)``) and the fixed maps' ``log |det dz/dx|`` ``(N,)``.
        """
        y, ladj = self.to_logit(x)
        if self.scale.ndim == 2:
            z = torch.linalg.solve_triangular(self.scale, (y - self.shift).T, upper=False).T
            return z, ladj - torch.log(torch.diagonal(self.scale)).sum()
        z = (y - self.shift) / self.scale
        return z, ladj - torch.log(self.scale).sum()

    def from_latent(self, z: Tensor) -> Tensor:
        """Inverse of :meth:`to_latent` (float64 in, float64 out)."""
        z = z.to(torch.float64)
        if self.scale.ndim == 2:
            return self.from_logit(z @ self.scale.T + self.shift)
        return self.from_logit(z * self.scale + self.shift)

    # ------------------------------------------------------------------ density and sampling
    def core_log_prob(self, z: Tensor) -> Tensor:
        """``log q_Z(z)`` of the trainable core, returned in float64."""
        return self.core().log_prob(z.to(self.core_dtype)).to(torch.float64)

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalised log-density on the box.

        Parameters
        ----------
        x : Tensor (N, D), float64

        Returns
        -------
        Tensor (N,), float64
            ``-inf`` for rows outside the box (and for rows with NaN).
        """
        x = x.to(torch.float64)
        out = torch.full(x.shape[:-1], -math.inf, dtype=torch.float64, device=x.device)
        ok = self.inside(x)
        if bool(ok.any()):
            z, ladj = self.to_latent(x[ok])
            out[ok] = self.core_log_prob(z) + ladj
        return out

    def sample_latent_to_box(self, eps: Tensor) -> Tensor:
        """Push base-distribution draws ``eps`` ``(N, D)`` through the flow into the box."""
        dist = self.core()
        z = dist.transform.inv(eps.to(self.core_dtype))
        return self.from_latent(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples (float64, strictly inside the box)."""
        eps = torch.randn(
            (n, self.dim), generator=generator, dtype=torch.float64, device=self.lower.device
        )
        return self.sample_latent_to_box(eps)
