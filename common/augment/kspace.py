"""k-space alterations: what acquisition and reconstruction do to an image.

MR images are measured in k-space, so most differences between scanners are
k-space operations. All linear ones (radial band gains, centre scaling,
apodization, truncation and the even part of the partial-Fourier mask) are real
and even in frequency, so they multiply into ONE filter applied to the half
spectrum of the real image in a single ``rfft2`` / ``irfft2`` pair. Only the
samples with partial Fourier pay for a second ``irfft2`` (the imaginary image
from the odd part of their mask). Noise and spikes are added in the image
domain (:mod:`common.augment.noise`), where they are equivalent and cheaper,
and the result is the magnitude image.

Samplers draw from a CPU ``torch.Generator`` and return neutral parameters for
samples that are off. Frequencies are normalised so that the Nyquist edge of
each axis is 1.
"""

import functools
from dataclasses import dataclass, fields
from typing import Self

import numpy as np
import torch
from torch import Tensor

from common.augment.intensity import uniform
from common.augment.noise import SPIKES_MAX, add_spikes_, noise_fields
from common.fft import irfft2, rfft2, rfft2_frequencies

BAND_MAX_LOG = 0.5  # band gains within exp(+-0.5) at strength 1
CENTRE_MAX_LOG = 0.4  # centre amplitude within exp(+-0.4) at strength 1
CENTRE_WIDTH_BINS = 2.0  # e-folding radius of the centre region, in k-space lines
APODIZATION_MIN_LOG_EDGE = -3.0  # window down to exp(-3) = 0.05 at Nyquist at strength 1
TRUNCATION_MIN_KEEP = 0.5  # down to half the lines per axis at strength 1


@dataclass(frozen=True)
class KspaceParams:
    """Per-sample k-space parameters for ``n`` rows; see the samplers for meanings."""

    band_log_gains: Tensor  # (n, 3) float32
    centre_log_scale: Tensor  # (n,) float32
    apodization_log_edge: Tensor  # (n, 2) float32, along H (ky) and W (kx)
    truncation_keep: Tensor  # (n, 2) float32, along H (ky) and W (kx)
    partial_fourier_fraction: Tensor  # (n,) float32
    partial_fourier_axis: Tensor  # (n,) int64, 0 = rows (H), 1 = columns (W)
    partial_fourier_side: Tensor  # (n,) int64, +1 or -1
    noise_sigma: Tensor  # (n,) float32
    noise_offset: Tensor  # (n,) int64
    spike_position: Tensor  # (n, S, 2) int64 signed (ky, kx)
    spike_amplitude: Tensor  # (n, S) float32, 0 = no spike
    spike_phase: Tensor  # (n, S) float32

    @classmethod
    def neutral(cls, batch: int) -> Self:
        """Parameters that leave ``batch`` images untouched (a starting point for tests)."""
        zeros, ones = torch.zeros(batch), torch.ones(batch)
        return cls(
            band_log_gains=torch.zeros(batch, 3),
            centre_log_scale=zeros,
            apodization_log_edge=torch.zeros(batch, 2),
            truncation_keep=torch.ones(batch, 2),
            partial_fourier_fraction=ones,
            partial_fourier_axis=torch.zeros(batch, dtype=torch.int64),
            partial_fourier_side=torch.ones(batch, dtype=torch.int64),
            noise_sigma=zeros,
            noise_offset=torch.zeros(batch, dtype=torch.int64),
            spike_position=torch.zeros(batch, SPIKES_MAX, 2, dtype=torch.int64),
            spike_amplitude=torch.zeros(batch, SPIKES_MAX),
            spike_phase=torch.zeros(batch, SPIKES_MAX),
        )


def sample_radial_gain(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Log-gains ``(B, 3)`` of the low, mid and high radial frequency bands.

    Physical cause: vendor reconstruction filters (smoothing, edge enhancement)
    and the k-space weighting of different sequences. The gain curve is
    sum exp(g_b) w_b(r) with raised-cosine bands w_b that sum to one (low
    peaks at r = 0, mid at 0.5, high from 1 on), so it is smooth in radius.
    g_b ~ U(-0.5 s, 0.5 s) i.i.d. Neutral: 0.
    """
    gains = uniform(generator, (on.shape[0], 3), -BAND_MAX_LOG, BAND_MAX_LOG) * strength
    return torch.where(on[:, None], gains, 0.0)


def sample_centre_scaling(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Log-scale ``(B,)`` of the k-space centre (DC and the lowest lines).

    Physical cause: receiver dynamic range and echo-peak scaling differ between
    scanners, changing the weight of the lowest frequencies (overall brightness
    and the slowest shading) against the rest. The centre weight is
    exp(-rho^2 / 2^2) with rho in k-space lines. log-scale ~ U(-0.4 s, 0.4 s).
    Neutral: 0.
    """
    scale = uniform(generator, (on.shape[0],), -CENTRE_MAX_LOG, CENTRE_MAX_LOG) * strength
    return torch.where(on, scale, 0.0)


def sample_apodization(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Log of the window value at Nyquist ``(B, 2)`` along H (ky) and W (kx).

    Physical cause: k-space apodization (e.g. Hamming/Gaussian) applied by the
    reconstruction to suppress ringing blurs the image, often differently along
    the two axes. The window is Gaussian, exp(log_edge * k^2) with k = 1 at
    Nyquist; log_edge ~ U(-3 s, 0) independently per axis. Neutral: 0.
    """
    edge = uniform(generator, (on.shape[0], 2), APODIZATION_MIN_LOG_EDGE, 0.0) * strength
    return torch.where(on[:, None], edge, 0.0)


def sample_truncation(strength: float, on: Tensor, generator: torch.Generator) -> Tensor:
    """Kept fraction of k-space ``(B, 2)`` along H and W; the rest is cut hard (Gibbs ringing).

    Physical cause: a smaller acquisition matrix than the reconstructed one
    (zero-filled interpolation) sharply truncates k-space, which rings near
    edges. keep ~ U(1 - 0.5 s, 1) independently per axis. Neutral: 1.
    """
    keep = 1.0 - uniform(generator, (on.shape[0], 2), 0.0, TRUNCATION_MIN_KEEP) * strength
    return torch.where(on[:, None], keep, 1.0)


def sample_partial_fourier(
    strength: float, on: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Acquired fraction ``(B,)``, axis ``(B,)`` and side ``(B,)`` of partial Fourier.

    Physical cause: to save time only a bit more than half of k-space is
    acquired along one axis; zero-filling the rest and taking the magnitude
    blurs along that axis and smears edges. fraction ~ U(1 - 0.45 s, 1 - 0.1 s),
    axis ~ uniform {0 (rows), 1 (columns)}, side ~ uniform {-1, +1} (which half
    is complete). Neutral: fraction 1.
    """
    batch = on.shape[0]
    fraction = 1.0 - uniform(generator, (batch,), 0.1, 0.45) * strength
    axis = torch.randint(0, 2, (batch,), generator=generator)
    side = 2 * torch.randint(0, 2, (batch,), generator=generator) - 1
    return torch.where(on, fraction, 1.0), torch.where(on, axis, 0), torch.where(on, side, 1)


@dataclass(frozen=True)
class FrequencyGrid:
    """Frequency grids of the half-spectrum layout of one shape."""

    basis: Tensor  # (4, H * (W//2+1)) on the device: low, mid, high band, low band x centre
    pair_basis: Tensor  # (4, H * 2 * (W//2+1)): the same with each value twice
    rows: np.ndarray  # (H,) float32 normalised frequency of each half-spectrum row
    cols: np.ndarray  # (W//2+1,) float32 normalised frequency of each column
    row_index: np.ndarray  # (H,) int64 signed integer frequency
    col_index: np.ndarray  # (W//2+1,) int64 signed integer frequency


@functools.lru_cache(maxsize=8)
def frequency_grid(height: int, width: int, device: torch.device) -> FrequencyGrid:
    """Frequency grids of the half-spectrum layout, built once per shape and device.

    The bands are raised cosines in the normalised radius r that sum to one:
    low = cos^2(pi r) below 0.5, mid rises to 1 at 0.5 and falls to 0 at 1,
    high = 1 from 1 on. The centre weight exp(-rho^2 / 2^2) (rho in k-space
    lines) is stored multiplied by the low band so that a centre scale C
    enters linearly: G_low * low * (1 + (C - 1) * centre).
    """
    row_index, col_index = rfft2_frequencies(height, width)
    rows, cols = (row_index / (height / 2)).float(), (col_index / (width / 2)).float()
    radius = torch.hypot(rows[:, None], cols[None, :])
    inner, outer = torch.pi * radius, torch.pi * (radius - 0.5)
    low = torch.where(radius < 0.5, torch.cos(inner) ** 2, 0.0)
    mid = torch.where(radius < 0.5, torch.sin(inner) ** 2, torch.cos(outer) ** 2)
    mid = torch.where(radius < 1.0, mid, 0.0)
    high = torch.where(radius < 0.5, 0.0, torch.where(radius < 1.0, torch.sin(outer) ** 2, 1.0))
    lines2 = (row_index[:, None] ** 2 + col_index[None, :] ** 2).float()
    centre = low * torch.exp(-lines2 / CENTRE_WIDTH_BINS**2)
    basis = torch.stack([low, mid, high, centre]).reshape(4, -1).to(device)
    pairs = basis.repeat_interleave(2, dim=1)
    return FrequencyGrid(
        basis, pairs, rows.numpy(), cols.numpy(), row_index.numpy(), col_index.numpy()
    )


def params_as_numpy(params: KspaceParams) -> dict[str, np.ndarray]:
    """The parameters as numpy arrays (small per-row arithmetic is far cheaper there)."""
    return {f.name: getattr(params, f.name).cpu().numpy() for f in fields(KspaceParams)}


def _partial_fourier_axis(
    fraction: np.ndarray, side: np.ndarray, index: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Even part ``(n, len)`` of the acquisition mask along one axis, and odd / even.

    A line k is acquired when side * k >= -round((fraction - 0.5) * size). The
    even part is 1 where k and -k are both acquired and 1/2 where only one is;
    the odd part is +-1/2 there, so odd / even is 0 or +-1.
    """
    extra = np.round((fraction - np.float32(0.5)) * np.float32(size)).astype(np.int64)[:, None]
    mirror_index = np.remainder(-index + size // 2, size) - size // 2
    here = (side[:, None] * index[None, :] >= -extra).astype(np.float32)
    mirror = (side[:, None] * mirror_index[None, :] >= -extra).astype(np.float32)
    even = (here + mirror) / 2
    return even, (here - mirror) / 2 / np.maximum(even, np.float32(0.5))


@dataclass(frozen=True)
class FilterFactors:
    """Everything a filter needs, as small per-row arrays (None = 1 everywhere)."""

    radial: np.ndarray | None  # (n, 4) weights of the cached basis
    rows: np.ndarray | None  # (n, H) separable factor along ky
    cols: np.ndarray | None  # (n, W//2+1) separable factor along kx
    odd_rows: np.ndarray  # (m, H) partial-Fourier odd / even along ky, for the m PF rows
    odd_cols: np.ndarray  # (m, W//2+1) the same along kx
    partial: np.ndarray  # (m,) int64 rows with partial Fourier


def filter_factors(
    p: dict[str, np.ndarray], grid: FrequencyGrid, shape: tuple[int, int]
) -> FilterFactors:
    """Radial weights and separable factors of every row, in numpy.

    The separable factors hold the Gaussian apodization, the truncation and
    the even part of the partial-Fourier mask; the odd / even ratios of the
    partial-Fourier rows turn their filtered spectrum into the odd part of
    the acquisition.
    """
    radial = None
    if (p["band_log_gains"] != 0).any() or (p["centre_log_scale"] != 0).any():
        gains = np.exp(p["band_log_gains"])
        centre = gains[:, :1] * np.expm1(p["centre_log_scale"])[:, None]
        radial = np.concatenate([gains, centre], axis=1)
    fraction, axis, side = (p[f"partial_fourier_{k}"] for k in ("fraction", "axis", "side"))
    partial = np.flatnonzero(fraction < 1)
    factors, odd = [], []
    frequencies = ((grid.rows, grid.row_index), (grid.cols, grid.col_index))
    for dim, (frequency, index) in enumerate(frequencies):
        log_edge, keep = p["apodization_log_edge"][:, dim], p["truncation_keep"][:, dim]
        here = axis[partial] == dim
        if not ((log_edge != 0).any() or (keep < 1).any() or here.any()):
            factors.append(None)
            odd.append(np.ones((partial.size, index.size), np.float32))
            continue
        factor = np.exp(log_edge[:, None] * frequency**2)
        factor *= np.abs(frequency)[None, :] <= keep[:, None]
        even, ratio = _partial_fourier_axis(fraction[partial], side[partial], index, shape[dim])
        factor[partial] *= np.where(here[:, None], even, np.float32(1))
        factors.append(factor)
        odd.append(np.where(here[:, None], ratio, np.float32(1)))
    return FilterFactors(radial, factors[0], factors[1], odd[0], odd[1], partial)


def kspace_filter(
    params: KspaceParams, height: int, width: int, device: torch.device
) -> tuple[Tensor | None, Tensor | None]:
    """The combined real, even filter ``(n, H, W//2+1)`` and the partial-Fourier odd ratio.

    The filter is radial gain x centre scaling (one matrix product with the
    cached basis) times separable row and column factors; it is None when it
    is 1 everywhere. The ratio, ``(m, H, W//2+1)`` for the ``m`` rows with
    partial Fourier (None if there are none), turns the filtered spectrum
    into the odd part of the acquisition: the imaginary image is
    ``irfft2(-1j * filtered * ratio)``.
    """
    grid, n = frequency_grid(height, width, device), params.band_log_gains.shape[0]
    f = filter_factors(params_as_numpy(params), grid, (height, width))
    ratio = None
    if f.partial.size:
        ratio = torch.from_numpy(f.odd_rows[:, :, None] * f.odd_cols[:, None, :]).to(device)
    return _filter(f, grid, n, device), ratio


def _filter(
    f: FilterFactors, grid: FrequencyGrid, n: int, device: torch.device, pairs: bool = False
) -> Tensor | None:
    """The filter ``(n, H, W//2+1)`` of :func:`kspace_filter`, or None if it is 1.

    With ``pairs``, every value is repeated twice along the last dimension,
    ``(n, H, 2 * (W//2+1))``, to match ``view_as_real`` of a spectrum: a real
    filter then scales a complex spectrum as one plain real multiplication
    (on CPU, complex x real first converts the filter to complex, and
    complex multiplication is slow).
    """
    if f.radial is None and f.rows is None and f.cols is None:
        return None
    height, half = grid.rows.size, grid.cols.size * (2 if pairs else 1)
    if f.radial is None:
        filt = torch.ones((n, height, half), device=device)
    else:
        basis = grid.pair_basis if pairs else grid.basis
        filt = (torch.from_numpy(f.radial).to(device) @ basis).view(n, height, half)
    if f.rows is not None:
        filt.mul_(torch.from_numpy(f.rows).to(device)[:, :, None])
    if f.cols is not None:
        cols = np.repeat(f.cols, 2, axis=1) if pairs else f.cols
        filt.mul_(torch.from_numpy(cols).to(device)[:, None, :])
    return filt


def _filtered(
    images: Tensor, f: FilterFactors, grid: FrequencyGrid, extra: np.ndarray
) -> tuple[Tensor, Tensor]:
    """Real images ``(n, H, W)`` after the filter, and imaginary images ``(k, H, W)`` of ``extra``.

    The imaginary images of the partial-Fourier rows among the ``k`` rows
    ``extra`` come from the odd part of their filtered spectra; the other
    extra rows (spikes only) get exact zeros.
    """
    (n, height, width), device = images.shape, images.device
    spectrum = rfft2(images)
    filt = _filter(f, grid, n, device, pairs=True)
    if filt is not None:
        torch.view_as_real(spectrum).view(filt.shape).mul_(filt)
    real = irfft2(spectrum, width)
    if not f.partial.size:
        return real, real.new_zeros((extra.size, height, width))
    odd = odd_images(spectrum, f.partial, f.odd_rows, f.odd_cols, width)
    if extra.size == f.partial.size:
        return real, odd
    imag = real.new_zeros((extra.size, height, width))
    slots = torch.from_numpy(np.searchsorted(extra, f.partial)).to(device)
    return real, imag.index_copy_(0, slots, odd)


def odd_images(
    spectrum: Tensor, rows: np.ndarray, odd_rows: np.ndarray, odd_cols: np.ndarray, width: int
) -> Tensor:
    """Imaginary images ``(m, H, W)`` of the partial-Fourier ``rows`` of a filtered half spectrum.

    ``odd_rows`` ``(m, H)`` and ``odd_cols`` ``(m, W//2+1)`` are the odd / even
    ratios of those rows' masks (``FilterFactors``): the odd part of the
    acquisition is ``-1j * ratio * filtered``.
    """
    ratio = (-1j * odd_rows[:, :, None] * odd_cols[:, None, :]).astype(np.complex64)
    chosen = torch.from_numpy(rows).to(spectrum.device)
    spectra = spectrum.index_select(0, chosen).mul_(torch.from_numpy(ratio).to(spectrum.device))
    return irfft2(spectra, width)


def add_row_spikes_(
    real: Tensor, imag: Tensor, extra: np.ndarray, params: KspaceParams, first: int = 0
) -> None:
    """In place: the spikes of every row of ``extra`` that has any.

    ``real`` ``(n, H, W)`` holds rows ``first`` to ``first + n`` of the batch
    that ``params`` describes; ``imag`` ``(k, H, W)`` holds the imaginary
    images of the (block-local) rows ``extra``.
    """
    for slot, row in enumerate(extra.tolist()):
        whole = first + row
        if bool((params.spike_amplitude[whole] != 0).any()):
            spikes = (params.spike_position[whole], params.spike_amplitude[whole])
            add_spikes_(real[row], imag[slot], *spikes, params.spike_phase[whole])


def simulate_acquisition(images: Tensor, params: KspaceParams) -> Tensor:
    """Magnitude image ``(n, H, W)`` of real ``images`` ``(n, H, W)`` after all k-space effects.

    One ``rfft2``, one multiplication by the combined filter and one
    ``irfft2`` give the real image ``a``; partial-Fourier rows get their
    imaginary image ``b`` from a second ``irfft2``, and spikes add to both.
    With complex noise sigma * (n_r + i n_i), rows without ``b`` take
    ``sigma^2 n_i^2`` from a precomputed stream, so they need no imaginary
    image at all. The input is not modified.
    """
    height, width = images.shape[-2:]
    p = params_as_numpy(params)
    grid = frequency_grid(height, width, images.device)
    f = filter_factors(p, grid, (height, width))
    spiky = (p["spike_amplitude"] != 0).any(axis=1)
    extra = np.flatnonzero(spiky | (p["partial_fourier_fraction"] < 1))
    if f.radial is None and f.rows is None and f.cols is None and not f.partial.size:
        real, imag = images.clone(), images.new_zeros((extra.size, height, width))
    else:
        real, imag = _filtered(images, f, grid, extra)
    add_row_spikes_(real, imag, extra, params)
    return _magnitude(real, imag, extra, p["noise_sigma"], params.noise_offset)


def _magnitude(
    real: Tensor, imag: Tensor, extra: np.ndarray, sigma: np.ndarray, offset: Tensor
) -> Tensor:
    """In place on ``real``: |real + i imag + sigma (n_r + i n_i)|; ``imag`` is for rows ``extra``.

    Four passes over the batch: add the real noise, square, add sigma^2 n_i^2
    from the stream (rows in ``extra`` get (imag + sigma n_i)^2 instead), sqrt.
    """
    (height, width), device = real.shape[-2:], real.device
    chosen = torch.from_numpy(extra).to(device)
    if not (sigma > 0).any():
        if not extra.size:
            return real.abs_()
        return real.square_().index_add_(0, chosen, imag.square_()).sqrt_()
    noise = noise_fields(offset, height, width, device)
    real_only = sigma.copy()
    real_only[extra] = 0
    scalars = torch.from_numpy(np.stack([sigma, real_only * real_only])).to(device)
    sigma_t, real_only_t = scalars[0][:, None, None], scalars[1][:, None, None]
    squared = real.addcmul_(noise[0], sigma_t).square_()
    squared.addcmul_(noise[2], real_only_t)
    if extra.size:
        imag.addcmul_(noise[1].index_select(0, chosen), sigma_t[chosen])
        squared.index_add_(0, chosen, imag.square_())
    return squared.sqrt_()
