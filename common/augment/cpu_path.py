"""The augmentation on a CPU: per-row arithmetic once, then cache-sized blocks through kernels.

Same physics and order as the torch path (:mod:`common.augment.pipeline`'s
``_apply_block``), rearranged for a CPU, where the chain is bound by memory
and by Python overhead rather than by arithmetic:

* everything per row (curve constants, filter factors, noise windows, the
  bias field's rank-4 factors) is computed once for the whole batch, in numpy;
* the batch then goes through in blocks of a few slices, so that a
  block's intermediates stay in the cache: contrast curve (one compiled
  loop), ``rfft2``, the k-space filter (one loop over the spectrum),
  ``irfft2``, then noise, magnitude, shading, gain and offset (one loop that
  writes the output). Partial Fourier and spikes, on a few rows, use torch.

The result equals the torch path's to float32 rounding (tests hold them to
1e-5); rows with neutral parameters come back bitwise unchanged.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
import torch
from torch import Tensor

from common.augment import fused, intensity, kspace, noise
from common.fft import irfft2, rfft2

if TYPE_CHECKING:  # the pipeline imports this module
    from common.augment.pipeline import AlterationParams

CPU = torch.device("cpu")


@dataclass(frozen=True)
class _RowPlan:
    """Every per-row quantity of one batch, as numpy arrays over its ``n`` rows."""

    curve: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # shift, rate, rise
    acquisition: kspace.KspaceParams  # noise and spikes divided by the outer slope
    acquired: np.ndarray  # (n,) bool: goes through the simulated acquisition
    factors: kspace.FilterFactors  # filter and partial-Fourier factors
    radial: np.ndarray  # (n, 4) radial weights (zeros when unused)
    rows: np.ndarray  # (n, H) separable factor along ky (ones when unused)
    pair_cols: np.ndarray  # (n, 2 (W//2+1)) factor along kx, each value twice
    spiky: np.ndarray  # (n,) bool
    sigma: np.ndarray  # (n,) noise sigma, divided by the curve's outer slope
    noise_start: np.ndarray  # (n,) int64 window starts in the noise stream
    row_field: np.ndarray  # (n, H, 4) bias field x gain, row factors
    col_basis: np.ndarray  # (4, W) Legendre polynomials along x
    offset: np.ndarray  # (n,)


def _plan(params: "AlterationParams", height: int, width: int) -> _RowPlan:
    """The batch's per-row arithmetic, in numpy."""
    count, slope = params.batch_size, params.curve_slopes[:, 0]
    curve = None
    if bool((params.curve_slopes[:, 1] != slope).any()):
        curve = intensity.curve_scalars(params.curve_window, params.curve_slopes)
    acquisition = params.kspace_params(slope)
    values = kspace.params_as_numpy(acquisition)
    grid = kspace.frequency_grid(height, width, CPU)
    factors = kspace.filter_factors(values, grid, (height, width))
    half, one = width // 2 + 1, np.float32(1)
    radial = np.zeros((count, 4), np.float32) if factors.radial is None else factors.radial
    rows = np.full((count, height), one) if factors.rows is None else factors.rows
    cols = np.full((count, half), one) if factors.cols is None else factors.cols
    row_field, col_basis = intensity.field_factors(
        params.bias_coefficients, height, width, CPU, slope * params.gain
    )
    return _RowPlan(
        curve=curve,
        acquisition=acquisition,
        acquired=params.kspace_rows().numpy(),
        factors=factors,
        radial=np.ascontiguousarray(radial, np.float32),
        rows=np.ascontiguousarray(rows, np.float32),
        pair_cols=np.repeat(cols.astype(np.float32), 2, axis=1),
        spiky=(values["spike_amplitude"] != 0).any(axis=1),
        sigma=values["noise_sigma"].astype(np.float32),
        noise_start=noise.noise_starts(acquisition.noise_offset, height, width).numpy(),
        row_field=row_field.numpy(),
        col_basis=np.ascontiguousarray(col_basis.numpy().T),
        offset=params.offset.numpy(),
    )


def apply_on_cpu(images: Tensor, params: "AlterationParams", block_pixels: int) -> Tensor:
    """``apply_alterations`` for float32 CPU ``images`` ``(B, H, W)``, in blocks of pixels."""
    images = images.contiguous()
    count, height, width = images.shape
    plan = _plan(params, height, width)
    result = torch.empty_like(images)
    step = max(1, block_pixels // (height * width))
    numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    for start in range(0, count, step):
        stop = min(start + step, count)
        _block(images[start:stop], plan, start, result[start:stop])
    return result


def _block(images: Tensor, plan: _RowPlan, first: int, out: Tensor) -> None:
    """Rows ``first`` to ``first + len(images)`` of the batch, written into ``out``."""
    count, height, width = images.shape
    rows = slice(first, first + count)
    altered = images
    if plan.curve is not None:
        shift, rate, rise = (part[rows] for part in plan.curve)
        altered = torch.empty_like(images)
        fused.curve_into(images.numpy(), shift, rate, rise, altered.numpy())
    acquired = plan.acquired[rows]
    slot = np.full(count, -1, np.int64)
    if acquired.any():
        real, imag, extra = _acquire(altered, plan, first)
        for row in np.flatnonzero(~acquired).tolist():
            real[row].copy_(altered[row])  # untouched rows, as on the torch path
        slot[extra] = np.arange(extra.size)
    else:
        real, imag = altered, images.new_zeros((0, height, width))
    fused.magnitude_shade_into(
        real.numpy(),
        imag.numpy(),
        slot,
        acquired,
        plan.sigma[rows],
        noise.noise_stream(CPU).numpy(),
        plan.noise_start[rows],
        plan.row_field[rows],
        plan.col_basis,
        plan.offset[rows],
        out.numpy(),
    )


def _acquire(altered: Tensor, plan: _RowPlan, first: int) -> tuple[Tensor, Tensor, np.ndarray]:
    """Filtered real images (spikes added), imaginary images of the block's rows ``extra``.

    ``extra`` are block-local indices of the rows with partial Fourier or
    spikes; every other row's imaginary image is 0.
    """
    count, height, width = altered.shape
    rows, f = slice(first, first + count), plan.factors
    spectrum = rfft2(altered)
    if f.radial is not None or f.rows is not None or f.cols is not None:
        pairs = torch.view_as_real(spectrum).view(count, height, -1).numpy()
        basis = kspace.frequency_grid(height, width, CPU).pair_basis.view(4, height, -1)
        radial, along_y, along_x = plan.radial[rows], plan.rows[rows], plan.pair_cols[rows]
        fused.filter_spectrum(pairs, f.radial is not None, radial, basis.numpy(), along_y, along_x)
    real = irfft2(spectrum, width)
    in_block = (f.partial >= first) & (f.partial < first + count)
    partial_rows = f.partial[in_block] - first
    extra = np.flatnonzero(plan.spiky[rows] | np.isin(np.arange(count), partial_rows))
    imag = real.new_zeros((extra.size, height, width))
    if partial_rows.size:
        odd = kspace.odd_images(
            spectrum, partial_rows, f.odd_rows[in_block], f.odd_cols[in_block], width
        )
        imag.index_copy_(0, torch.from_numpy(np.searchsorted(extra, partial_rows)), odd)
    kspace.add_row_spikes_(real, imag, extra, plan.acquisition, first)
    return real, imag, extra
