"""Fused CPU kernels for the augmentation's elementwise steps, compiled by numba.

Why: on a CPU every elementwise torch call is one pass over the batch through
memory, and the augmentation chain has about fifteen of them around its two
FFTs, so it cost 2 to 4 FFT round trips. numba compiles each run of steps
between the FFTs into one loop (contrast curve; k-space filter; noise,
magnitude, shading, gain and offset) without a C compiler on the machine
(llvmlite ships LLVM), and caches the machine code on disk. The torch path in
:mod:`common.augment.kspace` and :mod:`common.augment.intensity` stays the
reference and the GPU path; the tests hold the two to float32 rounding of each
other.

Each kernel spreads its slices over numba's threads (``prange``); the caller
sets their number to torch's (``common.augment.cpu_path``). Branches are
taken once per line, so the inner loops vectorize. Rows whose parameters are
neutral come back bitwise unchanged: their arithmetic is ``x + 0 * t`` and
``x * 1 + 0``. numba's OpenMP threading layer, like torch's, does not survive
``fork``: a child of a process that ran these kernels must not run them
again (nothing here forks; Flower's Ray workers and SuperNode apps start
fresh processes).
"""

from collections.abc import Callable

import numpy as np
from numba import njit, prange

_ZERO, _ONE = np.float32(0.0), np.float32(1.0)


def _compiled(function: Callable[..., None]) -> Callable[..., None]:
    """``function`` compiled, parallel and without the GIL, cached on disk where possible.

    numba refuses to cache when neither the source folder nor the user's cache
    folder is writable (a read-only container); the kernel is then compiled
    once per process instead (about a second) rather than failing the import.
    """
    try:
        return njit(cache=True, nogil=True, parallel=True)(function)
    except RuntimeError:
        return njit(nogil=True, parallel=True)(function)


@_compiled
def curve_into(
    images: np.ndarray, shift: np.ndarray, rate: np.ndarray, rise: np.ndarray, out: np.ndarray
) -> None:
    """``out = x + rise * clamp(x * rate - shift, 0, 1)`` per slice ``(n, H, W)``.

    The contrast curve divided by its outer slope (see ``intensity.curve_shape``).
    """
    count, height, width = images.shape
    for b in prange(count):
        s, r, q = shift[b], rate[b], rise[b]
        for y in range(height):
            source, target = images[b, y], out[b, y]
            for x in range(width):
                value = source[x]
                target[x] = value + q * min(max(value * r - s, _ZERO), _ONE)


@_compiled
def filter_spectrum(
    pairs: np.ndarray,
    use_radial: bool,
    radial: np.ndarray,
    pair_basis: np.ndarray,
    rows: np.ndarray,
    pair_cols: np.ndarray,
) -> None:
    """In place on half spectra as real pairs ``(n, H, 2 (W//2+1))``.

    The filter of slice b at line y, column x is ``rows[b, y] * pair_cols[b, x]``
    times, with ``use_radial``, ``sum_k radial[b, k] pair_basis[k, y, x]``. Each
    value appears twice along x (real and imaginary part), as in
    ``kspace._Grid.pair_basis``.
    """
    count, height, span = pairs.shape
    for b in prange(count):
        cols = pair_cols[b]
        r0, r1, r2, r3 = radial[b, 0], radial[b, 1], radial[b, 2], radial[b, 3]
        for y in range(height):
            line, along_y = pairs[b, y], rows[b, y]
            if use_radial:
                b0, b1 = pair_basis[0, y], pair_basis[1, y]
                b2, b3 = pair_basis[2, y], pair_basis[3, y]
                for x in range(span):
                    gain = r0 * b0[x] + r1 * b1[x] + r2 * b2[x] + r3 * b3[x]
                    line[x] *= along_y * cols[x] * gain
            else:
                for x in range(span):
                    line[x] *= along_y * cols[x]


@_compiled
def magnitude_shade_into(
    real: np.ndarray,
    imag: np.ndarray,
    slot: np.ndarray,
    acquired: np.ndarray,
    sigma: np.ndarray,
    stream: np.ndarray,
    start: np.ndarray,
    row_field: np.ndarray,
    col_basis: np.ndarray,
    offset: np.ndarray,
    out: np.ndarray,
) -> None:
    """Noise and magnitude, then shading, gain and offset, written into ``out`` ``(n, H, W)``.

    Acquired slice b: ``m = |real + s n_r + i (imag[slot[b]] + s n_i)|`` with
    ``s = sigma[b]``; a slice without an imaginary image (``slot`` -1) takes
    ``n_i^2`` from the stream's third part. Other slices: ``m = real``. Then
    ``out = m * sum_j row_field[b, y, j] col_basis[j, x] + offset[b]``: the bias
    field times the gain as a rank-4 product. The noise of slice b, line y is
    ``stream[:, start[b] + y W :][:, :W]`` (``noise.noise_fields`` as a window of
    the contiguous stream, which keeps the loads contiguous: 3x faster).
    """
    count, height, width = real.shape
    c0, c1, c2, c3 = col_basis[0], col_basis[1], col_basis[2], col_basis[3]
    for b in prange(count):
        s, k, shift = sigma[b], slot[b], offset[b]
        noisy = acquired[b] and s != _ZERO
        for y in range(height):
            f0, f1 = row_field[b, y, 0], row_field[b, y, 1]
            f2, f3 = row_field[b, y, 2], row_field[b, y, 3]
            line, target = real[b, y], out[b, y]
            first = start[b] + y * width
            if not acquired[b]:
                for x in range(width):
                    field = f0 * c0[x] + f1 * c1[x] + f2 * c2[x] + f3 * c3[x]
                    target[x] = line[x] * field + shift
            elif k >= 0 and noisy:
                other = imag[k, y]
                n_r, n_i = stream[0, first : first + width], stream[1, first : first + width]
                for x in range(width):
                    a, c = line[x] + s * n_r[x], other[x] + s * n_i[x]
                    field = f0 * c0[x] + f1 * c1[x] + f2 * c2[x] + f3 * c3[x]
                    target[x] = np.sqrt(a * a + c * c) * field + shift
            elif k >= 0:
                other = imag[k, y]
                for x in range(width):
                    a, c = line[x], other[x]
                    field = f0 * c0[x] + f1 * c1[x] + f2 * c2[x] + f3 * c3[x]
                    target[x] = np.sqrt(a * a + c * c) * field + shift
            elif noisy:
                n_r, n_i2 = stream[0, first : first + width], stream[2, first : first + width]
                s2 = s * s
                for x in range(width):
                    a = line[x] + s * n_r[x]
                    field = f0 * c0[x] + f1 * c1[x] + f2 * c2[x] + f3 * c3[x]
                    target[x] = np.sqrt(a * a + s2 * n_i2[x]) * field + shift
            else:
                for x in range(width):
                    field = f0 * c0[x] + f1 * c1[x] + f2 * c2[x] + f3 * c3[x]
                    target[x] = abs(line[x]) * field + shift
