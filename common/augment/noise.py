"""Stochastic k-space artifacts, added in the image domain: thermal noise and spikes.

With the orthonormal FFT, white complex Gaussian noise in k-space is white
complex Gaussian noise of the same sigma in the image, and a single k-space
point is a complex plane wave. Both are therefore added to the complex image
directly, which avoids a transform; the magnitude is taken afterwards (Rician
noise, herringbone stripes).
"""

import functools
import math

import numpy as np
import torch
from torch import Tensor

from common.augment.intensity import uniform

NOISE_SIGMA = (0.025, 0.1)  # SNR 40..10 against a foreground of 1 at strength 1
STREAM_LENGTH = 1 << 22  # noise samples per part; one batch of 32 x 256 x 256 fits twice
NOISE_STREAM_SEED = 0x5EEDF1E1D
SPIKES_MAX = 3
SPIKE_AMPLITUDE = (0.02, 0.1)  # stripe amplitude in profile units at strength 1


def sample_noise(
    strength: float, on: Tensor, generator: torch.Generator, shape: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Noise standard deviation ``(B,)`` and offset ``(B,)`` into the fixed noise stream.

    Physical cause: thermal noise of the patient and the receive chain is white
    complex Gaussian in k-space; in the magnitude image it is Rician. sigma is
    per real/imaginary component in profile units (foreground about 1):
    log sigma ~ U(log 0.025, log 0.1) + log s, i.e. SNR 10..40 at strength 1.
    The offset picks the sample's noise in :func:`noise_fields`: a uniform
    start for the batch, then consecutive, non-overlapping windows (kept for
    samples that are off, so one batch stays one window). Neutral: sigma 0.
    """
    batch, size = on.shape[0], shape[0] * shape[1]
    low, high = (math.log(v) for v in NOISE_SIGMA)
    sigma = torch.exp(uniform(generator, (batch,), low, high)) * strength
    room = STREAM_LENGTH - batch * size
    start = torch.randint(0, max(room, 0) + 1, (1,), generator=generator)
    offset = (start + size * torch.arange(batch)) % max(STREAM_LENGTH - size + 1, 1)
    return torch.where(on, sigma, 0.0), offset


def stack_offsets(offset: Tensor, channels: int, shape: tuple[int, int]) -> Tensor:
    """Noise offsets for ``channels`` slices of each of ``B`` stacks: ``(B * channels,)``.

    ``offset`` ``(B,)`` is one batch as :func:`sample_noise` drew it. The batch's
    first window stays and the B * C slices take consecutive windows from it,
    as if drawn for B * C slices: the slices of one stack never share noise
    (their windows are apart by at least H * W, modulo the stream), and past
    the stream's end the windows wrap around, as they do across batches.
    No random numbers are drawn, so a stack sees the same stream as one slice.
    """
    size = shape[0] * shape[1]
    count = offset.shape[0] * channels
    return (offset[:1] + size * torch.arange(count)) % max(STREAM_LENGTH - size + 1, 1)


def sample_spikes(
    strength: float, on: Tensor, generator: torch.Generator, shape: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Spike positions ``(B, 3, 2)``, amplitudes ``(B, 3)`` and phases ``(B, 3)``.

    Physical cause: electrostatic discharge or a loose component puts a few
    very bright points into k-space, which show as a herringbone of stripes.
    Count ~ uniform {1, 2, 3}; position at radius ~ U(0.2, 0.95) (Nyquist = 1)
    and angle ~ U(0, 2 pi), rounded to signed integer frequencies (ky, kx);
    stripe amplitude ~ U(0.02 s, 0.1 s) in profile units (the k-space point is
    amplitude * sqrt(H W)); phase ~ U(0, 2 pi). Neutral: all amplitudes 0.
    """
    batch, (height, width) = on.shape[0], shape
    count = torch.randint(1, SPIKES_MAX + 1, (batch, 1), generator=generator)
    radius = uniform(generator, (batch, SPIKES_MAX), 0.2, 0.95)
    angle = uniform(generator, (batch, SPIKES_MAX), 0.0, 2 * math.pi)
    ky = torch.round(radius * torch.sin(angle) * (height // 2)).long()
    kx = torch.round(radius * torch.cos(angle) * (width // 2)).long()
    amplitude = uniform(generator, (batch, SPIKES_MAX), *SPIKE_AMPLITUDE) * strength
    phase = uniform(generator, (batch, SPIKES_MAX), 0.0, 2 * math.pi)
    present = on[:, None] & (torch.arange(SPIKES_MAX)[None, :] < count)
    position = torch.where(present[:, :, None], torch.stack([ky, kx], dim=2), 0)
    return position, torch.where(present, amplitude, 0.0), torch.where(present, phase, 0.0)


def add_spikes_(
    real: Tensor, imag: Tensor, position: Tensor, amplitude: Tensor, phase: Tensor
) -> None:
    """Add spikes ``(S, 2)``, ``(S,)``, ``(S,)`` to a complex image ``(H, W)`` in place.

    A k-space point at signed frequency (ky, kx) is, in the image of
    :func:`common.fft.ifft2c`, the plane wave
    A exp(i (2 pi ky (y - H//2) / H + 2 pi kx (x - W//2) / W + phase)),
    added as two rank-one updates to each of the real and imaginary parts.
    """
    height, width = real.shape
    y = torch.arange(height, device=real.device, dtype=torch.float32) - height // 2
    x = torch.arange(width, device=real.device, dtype=torch.float32) - width // 2
    for (ky, kx), a, phi in zip(position.tolist(), amplitude.tolist(), phase.tolist(), strict=True):
        if a == 0:
            continue
        along_y = 2 * math.pi * ky * y / height + phi
        along_x = 2 * math.pi * kx * x / width
        cos_y, sin_y, cos_x, sin_x = along_y.cos(), along_y.sin(), along_x.cos(), along_x.sin()
        real.addr_(cos_y, cos_x, alpha=a).addr_(sin_y, sin_x, alpha=-a)
        imag.addr_(sin_y, cos_x, alpha=a).addr_(cos_y, sin_x, alpha=a)


@functools.lru_cache(maxsize=4)
def noise_stream(device: torch.device) -> Tensor:
    """Fixed white Gaussian stream ``(3, L)``: real part, imaginary part, imaginary squared.

    Identical on every device and in every run. Drawing fresh normals costs
    several FFT round trips on a CPU, so a sample's noise is a window of this
    stream (4M values per part, far too many to learn by heart). The squared
    imaginary part lets the Rician magnitude of a real image be formed without
    an imaginary image.
    """
    rng = np.random.default_rng(NOISE_STREAM_SEED)
    parts = torch.from_numpy(rng.standard_normal((2, STREAM_LENGTH), dtype=np.float32))
    return torch.cat([parts, parts[1:] ** 2]).to(device)


def noise_starts(offset: Tensor, height: int, width: int) -> Tensor:
    """Where each sample's ``H * W`` window starts in the stream, for offsets ``(n,)``."""
    size = height * width
    if size > STREAM_LENGTH:
        raise ValueError(f"noise needs H * W <= {STREAM_LENGTH}, got {height} x {width}")
    return offset % (STREAM_LENGTH - size + 1)


def noise_fields(offset: Tensor, height: int, width: int, device: torch.device) -> Tensor:
    """Unit-variance complex noise for each offset ``(n,)``: ``(3, n, H, W)``.

    The three parts are the real noise, the imaginary noise and its square.
    Deterministic in the offsets and the same on every device. Consecutive
    offsets one image apart (as sampled) give a view of the stream; others are
    gathered window by window.
    """
    size = height * width
    stream = noise_stream(device)
    offset = noise_starts(offset, height, width)
    count, first = offset.shape[0], int(offset[0]) if offset.numel() else 0
    consecutive = bool((offset == first + size * torch.arange(count)).all())
    if consecutive and first + count * size <= STREAM_LENGTH:
        return stream[:, first : first + count * size].view(3, count, height, width)
    windows = [stream[:, start : start + size] for start in offset.tolist()]
    return torch.stack(windows, dim=1).view(3, count, height, width)
