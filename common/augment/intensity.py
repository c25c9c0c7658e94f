"""Image-domain alterations: tissue contrast curves, coil shading, gain and offset.

A linear k-space filter is a convolution and cannot change the contrast *between*
tissues; these alterations can. Each has a sampler, which draws parameters from
a CPU ``torch.Generator``, and a deterministic application. Samplers return
neutral parameters for samples that are off, and the applications return such
samples bitwise unchanged, so zero strength is exactly the identity.

Tensors: images are float32 ``(B, H, W)`` in profile units; parameters are
float32 CPU tensors with a leading batch dimension.
"""

import functools

import numpy as np
import torch
from torch import Tensor

CURVE_LOG_SLOPE = 0.7  # segment slopes within exp(+-0.7) at strength 1
BIAS_DEGREE = 3
BIAS_MAX = 0.4  # field within 1 +- 0.4 at strength 1
GAIN_MAX_LOG = 0.3  # gain within x0.74..x1.35 at strength 1
OFFSET_MAX = 0.05  # offset within 0..0.05 profile units at strength 1


def uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    """Float32 CPU samples from U(low, high)."""
    return torch.empty(shape).uniform_(low, high, generator=generator)


def sample_intensity_curve(
    strength: float, on: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Random monotone intensity curve: window ``(B, 2)`` and slopes ``(B, 2)``.

    Physical cause: TR, TE, TI, flip angle and field strength weight each
    tissue's T1, T2 and proton density differently, so one site's intensities
    map onto another's through a monotone but non-linear curve.

    The curve is piecewise linear through 0 with three segments: slope
    ``s_in`` inside a window [t1, t2] and ``s_out`` below and above it (and
    linearly beyond). Windows t1 ~ U(0.1, 0.8), t2 = t1 + U(0.2, 0.6) in profile
    units place the change between any two of CSF, GM and WM; log-slopes are
    i.i.d. U(-0.7 s, 0.7 s) for strength s, then both are divided by f(1) so
    the foreground level 1 stays at 1 (global scale belongs to the gain).
    Three segments with a free window and two slopes can move three tissue
    levels independently, in fewer passes over the image than a general
    curve. Neutral: slopes 1.
    """
    batch = on.shape[0]
    first = uniform(generator, (batch,), 0.1, 0.8)
    window = torch.stack([first, first + uniform(generator, (batch,), 0.2, 0.6)], dim=1)
    slopes = torch.exp(uniform(generator, (batch, 2), -CURVE_LOG_SLOPE, CURVE_LOG_SLOPE) * strength)
    below_one = window.clamp(max=1.0)
    at_one = slopes[:, 0] + (slopes[:, 1] - slopes[:, 0]) * (below_one[:, 1] - below_one[:, 0])
    slopes = slopes / at_one[:, None]
    window = torch.where(on[:, None], window, 0.0)
    return window, torch.where(on[:, None], slopes, 1.0)


def curve_shape(images: Tensor, window: Tensor, slopes: Tensor) -> Tensor:
    """``f(images) / s_out`` as a new tensor ``(B, H, W)``; see :func:`sample_intensity_curve`.

    f(x) = s_out (x + r clamp((x - t1) / w, 0, 1)) with w = t2 - t1 and
    r = (s_in - s_out) w / s_out, which is exactly 0 at 0. The outer slope
    s_out is a plain scale, so callers fold it into a later one (the pipeline
    into its final gain). Three passes; clamping to constant bounds is much
    faster than to per-row ones. Rows with s_in = s_out come back bitwise
    unchanged.
    """
    scalars = torch.from_numpy(np.stack(curve_scalars(window, slopes)))
    shift, rate_t, rise_t = scalars.to(images.device)[:, :, None, None]
    # mul + sub_ beats one addcmul whose first operand is broadcast
    inside = torch.mul(images, rate_t).sub_(shift).clamp_(0.0, 1.0)
    return torch.addcmul(images, inside, rise_t, out=inside)


def curve_scalars(window: Tensor, slopes: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row (shift, rate, rise): :func:`curve_shape` is x + rise clamp(x rate - shift)."""
    window_np, slopes_np = window.cpu().numpy(), slopes.cpu().numpy()
    width = np.maximum(window_np[:, 1] - window_np[:, 0], np.float32(1e-3))
    rate = 1 / width
    rise = (slopes_np[:, 1] - slopes_np[:, 0]) * width / slopes_np[:, 0]
    return window_np[:, 0] * rate, rate, rise


def apply_intensity_curve(images: Tensor, window: Tensor, slopes: Tensor, gain: Tensor) -> Tensor:
    """``gain * f(images)`` as a new tensor ``(B, H, W)``; see :func:`curve_shape`.

    The gain is folded in because it only scales the slopes. Rows with
    slopes 1 and gain 1 come back bitwise unchanged.
    """
    scale = (slopes[:, 0] * gain).to(images.device)[:, None, None]
    if not bool((slopes[:, 1] != slopes[:, 0]).any()):
        return images * scale
    return curve_shape(images, window, slopes).mul_(scale)


def sample_bias_field(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Smooth multiplicative shading: Legendre coefficients ``(B, 4, 4)`` of the field.

    Physical cause: receive-coil sensitivity and transmit (B1) inhomogeneity
    make the same tissue brighter near the coil and darker far from it.

    The field is 1 + sum c_ij P_i(y) P_j(x) over Legendre polynomials of total
    degree 1 <= i + j <= 3 on [-1, 1]. Coefficients are drawn c_ij ~
    N(0, 1) / (1 + i + j), then rescaled so that sum |c_ij| = a with
    a ~ U(0.5, 1) * 0.4 s. Since |P_i| <= 1, the field lies within [1 - a, 1 + a]
    (|log field| <= 0.51 at strength 1) and stays positive. Neutral: all 0.
    """
    batch = on.shape[0]
    order = torch.arange(BIAS_DEGREE + 1)
    total = order[:, None] + order[None, :]
    allowed = (total >= 1) & (total <= BIAS_DEGREE)
    raw = torch.randn((batch, BIAS_DEGREE + 1, BIAS_DEGREE + 1), generator=generator)
    raw = raw / (1.0 + total) * allowed
    amplitude = uniform(generator, (batch,), 0.5, 1.0) * BIAS_MAX * strength
    scale = amplitude / raw.abs().sum(dim=(1, 2)).clamp(min=1e-12)
    coefficients = raw * scale[:, None, None]
    return torch.where(on[:, None, None], coefficients, torch.zeros_like(coefficients))


@functools.lru_cache(maxsize=16)
def _legendre(size: int, device: torch.device) -> Tensor:
    """P_0..P_3 at pixel centres mapped onto (-1, 1): shape ``(size, 4)``; cached."""
    t = (2.0 * torch.arange(size, device=device, dtype=torch.float32) + 1.0) / size - 1.0
    return torch.stack([torch.ones_like(t), t, (3 * t**2 - 1) / 2, (5 * t**3 - 3 * t) / 2], dim=1)


def bias_field(
    coefficients: Tensor,
    height: int,
    width: int,
    device: torch.device,
    scale: Tensor | None = None,
) -> Tensor:
    """The multiplicative field ``(B, H, W)``, within [1 - sum |c|, 1 + sum |c|].

    Built as one batched product of two small matrices (the field has rank <= 4),
    so it costs a single pass; a zero row gives a field of exactly 1. A
    per-row ``scale`` ``(B,)`` multiplies the field at no extra cost (a zero
    row then gives exactly the scale).
    """
    row_field, col_basis = field_factors(coefficients, height, width, device, scale)
    return torch.matmul(row_field, col_basis.T)


def field_factors(
    coefficients: Tensor,
    height: int,
    width: int,
    device: torch.device,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The field of :func:`bias_field` as ``row_field`` ``(B, H, 4)`` @ ``col_basis.T``.

    A zero row gives ``row_field`` exactly (scale, 0, 0, 0) on every line, so
    its field is exactly the scale everywhere (P_0 = 1).
    """
    rows, cols = _legendre(height, device), _legendre(width, device)
    full = coefficients.clone()
    full[:, 0, 0] += 1.0
    if scale is not None:
        full *= scale[:, None, None]
    return torch.matmul(rows, full.to(device)), cols


def sample_gain_offset(
    strength: float, on: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Global gain ``(B,)`` and offset ``(B,)`` of the magnitude image.

    Physical cause: receiver gain and the vendor's rescale slope and intercept
    differ between scanners and protocols. log gain ~ U(-0.3 s, 0.3 s);
    offset ~ U(0, 0.05 s) in profile units (a raised floor: a magnitude image
    cannot go below zero). Neutral: gain 1, offset 0.
    """
    batch = on.shape[0]
    gain = torch.exp(uniform(generator, (batch,), -GAIN_MAX_LOG, GAIN_MAX_LOG) * strength)
    offset = uniform(generator, (batch,), 0.0, OFFSET_MAX) * strength
    return torch.where(on, gain, torch.ones_like(gain)), torch.where(on, offset, 0.0)


def shade(
    images: Tensor, coefficients: Tensor, scale: Tensor, offset: Tensor, out: Tensor | None = None
) -> Tensor:
    """``scale * images * bias_field + offset`` as a new tensor ``(B, H, W)``, or into ``out``.

    The last step of the pipeline, with the gain (and the curve's outer
    slope) in ``scale`` ``(B,)``: the field and the scale are one small
    product, the rest is a single ``addcmul`` pass that also writes the output.
    See :func:`apply_bias_offset_` for why shading acts on the magnitude image.
    Rows with zero coefficients and offset and scale 1 come back bitwise
    unchanged.
    """
    height, width = images.shape[-2:]
    scalars = torch.stack([scale, offset]).to(images.device)[:, :, None, None]
    if bool(coefficients.any()):
        factor = bias_field(coefficients, height, width, images.device, scale)
    else:
        factor = scalars[0]
    if out is None:
        return torch.addcmul(scalars[1], images, factor)
    return torch.addcmul(scalars[1], images, factor, out=out)


def apply_bias_offset_(images: Tensor, coefficients: Tensor, offset: Tensor) -> Tensor:
    """In place: ``images * bias_field + offset`` for images ``(B, H, W)``; returns ``images``.

    The shading is applied to the magnitude image, which also modulates the
    noise as coil sensitivities do in a coil-combined image; for fields this
    smooth, shading before or after the reconstruction filter differs
    negligibly. Rows with zero coefficients and offset are left unchanged.
    """
    height, width = images.shape[-2:]
    if bool(coefficients.any()):
        images.mul_(bias_field(coefficients, height, width, images.device))
    if bool(offset.any()):
        images.add_(offset.to(images.device)[:, None, None])
    return images
