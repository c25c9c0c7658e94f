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
from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor

from common.augment.intensity import uniform
from common.augment.noise import SPIKES_MAX, add_spikes_, noise_fields
from common.fft import irfft2, rfft2, rfft2_frequencies, signed_index

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
class _Grid:
    basis: Tensor  # (4, H * (W // 2 + 1)): low, mid, high band, and low band x centre
    rows: Tensor  # (H,) normalised frequency of each half-spectrum row
    cols: Tensor  # (W // 2 + 1,) normalised frequency of each column
    row_index: Tensor  # (H,) signed integer frequency
    col_index: Tensor  # (W // 2 + 1,) signed integer frequency


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int, device: torch.device) -> _Grid:
    """Frequency grids of the half-spectrum layout, built once per shape and device.

    The bands are raised cosines in the normalised radius r that sum to one:
    low = cos^2(pi r) below 0.5, mid rises to 1 at 0.5 and falls to 0 at 1,
    high = 1 from 1 on. The centre weight exp(-rho^2 / 2^2) (rho in k-space
    lines) is stored multiplied by the low band so that a centre scale C
    enters linearly: G_low * low * (1 + (C - 1) * centre).
    """
    row_index, col_index = rfft2_frequencies(height, width, device)
    rows, cols = (row_index / (height / 2)).float(), (col_index / (width / 2)).float()
    radius = torch.hypot(rows[:, None], cols[None, :])
    inner, outer = torch.pi * radius, torch.pi * (radius - 0.5)
    low = torch.where(radius < 0.5, torch.cos(inner) ** 2, 0.0)
    mid = torch.where(radius < 0.5, torch.sin(inner) ** 2, torch.cos(outer) ** 2)
    mid = torch.where(radius < 1.0, mid, 0.0)
    high = torch.where(radius < 0.5, 0.0, torch.where(radius < 1.0, torch.sin(outer) ** 2, 1.0))
    lines2 = (row_index[:, None] ** 2 + col_index[None, :] ** 2).float()
    centre = low * torch.exp(-lines2 / CENTRE_WIDTH_BINS**2)
    basis = torch.stack([low, mid, high, centre]).reshape(4, -1)
    return _Grid(basis, rows, cols, row_index, col_index)


def _partial_fourier_axis(
    fraction: Tensor, side: Tensor, index: Tensor, size: int
) -> tuple[Tensor, Tensor]:
    """Even part ``(n, len)`` of the acquisition mask along one axis, and odd / even.

    A line k is acquired when side * k >= -round((fraction - 0.5) * size). The
    even part is 1 where k and -k are both acquired and 1/2 where only one is;
    the odd part is +-1/2 there, so odd / even is 0 or +-1.
    """
    extra = torch.round((fraction - 0.5) * size).long()[:, None]
    here = (side[:, None] * index[None, :] >= -extra).float()
    mirror = (side[:, None] * signed_index(-index, size)[None, :] >= -extra).float()
    even = (here + mirror) / 2
    return even, (here - mirror) / 2 / even.clamp(min=0.5)


def _axis_factors(
    params: KspaceParams, grid: _Grid, shape: tuple[int, int], device: torch.device
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Separable filter factors for rows ``(n, H)`` and columns ``(n, W//2+1)`` (None = 1).

    They hold the Gaussian apodization, the truncation and the even part of
    the partial-Fourier mask. Also returns the partial-Fourier odd / even ratio
    ``(m, H, W//2+1)`` for the ``m`` rows that use it (None if none do).
    """
    partial = params.partial_fourier_fraction < 1
    factors, ratios = [], []
    for axis, (frequency, index) in enumerate(
        ((grid.rows, grid.row_index), (grid.cols, grid.col_index))
    ):
        log_edge = params.apodization_log_edge[:, axis]
        keep = params.truncation_keep[:, axis]
        used = (log_edge != 0) | (keep < 1) | (partial & (params.partial_fourier_axis == axis))
        factor = torch.exp(log_edge.to(device)[:, None] * frequency**2)
        factor = factor * (frequency.abs()[None, :] <= keep.to(device)[:, None])
        if partial.any():
            fraction = params.partial_fourier_fraction.to(device)
            even, ratio = _partial_fourier_axis(
                fraction, params.partial_fourier_side.to(device), index, shape[axis]
            )
            here = (params.partial_fourier_axis == axis).to(device)[:, None]
            factor = factor * torch.where(here, even, 1.0)
            ratios.append(torch.where(here, ratio, 1.0)[partial.to(device)])
        factors.append(factor if used.any() else None)
    ratio = ratios[0][:, :, None] * ratios[1][:, None, :] if ratios else None
    return factors[0], factors[1], ratio


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
    grid, n = _grid(height, width, device), params.band_log_gains.shape[0]
    rows, cols, ratio = _axis_factors(params, grid, (height, width), device)
    radial = (params.band_log_gains != 0).any(dim=1) | (params.centre_log_scale != 0)
    filt = None
    if radial.any():
        gains = params.band_log_gains.exp()
        centre = gains[:, :1] * torch.expm1(params.centre_log_scale)[:, None]
        filt = (torch.cat([gains, centre], dim=1).to(device) @ grid.basis).view(n, height, -1)
    separable = [f for f in (rows, cols) if f is not None]
    if filt is None and not separable:
        return None, ratio
    if filt is None:
        filt = torch.ones((n, height, width // 2 + 1), device=device)
    if rows is not None:
        filt.mul_(rows[:, :, None])
    if cols is not None:
        filt.mul_(cols[:, None, :])
    return filt, ratio


def simulate_acquisition(images: Tensor, params: KspaceParams) -> Tensor:
    """Magnitude image ``(n, H, W)`` of real ``images`` ``(n, H, W)`` after all k-space effects.

    One ``rfft2``, one multiplication by the combined filter and one ``irfft2``
    give the real image ``a``; partial-Fourier rows get their imaginary image
    ``b`` from a second ``irfft2``, and spikes add to both. With complex noise
    sigma * (n_r + i n_i), rows without ``b`` take ``sigma^2 n_i^2`` from a
    precomputed stream, so they need no imaginary image at all. The input is
    not modified.
    """
    height, width = images.shape[-2:]
    device = images.device
    filt, ratio = kspace_filter(params, height, width, device)
    partial = (params.partial_fourier_fraction < 1).nonzero().squeeze(1)
    if filt is None and not partial.numel():
        real, spectrum = images.clone(), None
    else:
        spectrum = rfft2(images)
        if filt is not None:
            spectrum.mul_(filt)
        real = irfft2(spectrum, width)

    spiky = (params.spike_amplitude != 0).any(dim=1)
    complex_rows = ((params.partial_fourier_fraction < 1) | spiky).nonzero().squeeze(1)
    imag = None
    if complex_rows.numel():
        imag = real.new_zeros((complex_rows.numel(), height, width))
        if partial.numel():
            odd = spectrum[partial.to(device)].mul_(ratio).mul_(-1j)
            slots = torch.searchsorted(complex_rows, partial).to(device)
            imag.index_copy_(0, slots, irfft2(odd, width))
        for slot, row in enumerate(complex_rows.tolist()):
            if spiky[row]:
                spikes = (params.spike_position[row], params.spike_amplitude[row])
                add_spikes_(real[row], imag[slot], *spikes, params.spike_phase[row])
        complex_rows = complex_rows.to(device)

    if not bool((params.noise_sigma > 0).any()):
        if imag is None:
            return real.abs_()
        return real.square_().index_add_(0, complex_rows, imag.square_()).sqrt_()
    noise = noise_fields(params.noise_offset, height, width, device)
    sigma = params.noise_sigma.to(device)[:, None, None]
    squared = real.addcmul_(noise[0], sigma).square_()
    real_only = sigma if imag is None else sigma.index_fill(0, complex_rows, 0.0)
    squared.addcmul_(noise[2], real_only**2)
    if imag is not None:
        imag = torch.addcmul(imag, noise[1].index_select(0, complex_rows), sigma[complex_rows])
        squared.index_add_(0, complex_rows, imag.square_())
    return squared.sqrt_()
