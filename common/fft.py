"""Orthonormal 2D FFTs over the last two dimensions.

Two layouts are offered:

* **centred** (``fft2c`` / ``ifft2c``, the fastMRI convention): full complex
  spectra with the DC term at index ``(H // 2, W // 2)``. Use these to look at or
  edit k-space as a scanner stores it.
* **half spectrum** (``rfft2`` / ``irfft2``): the non-redundant half of the
  spectrum of a *real* image, uncentred (DC at ``[0, 0]``, rows ordered like
  ``torch.fft.fftfreq(H)``). About twice as fast; use it for filters that are real
  and even in frequency, which keep a real image real.

All transforms use ``norm="ortho"``, so they preserve the L2 norm and white noise
of standard deviation sigma per component stays sigma in the other domain.
"""

import torch
from torch import Tensor

_DIMS = (-2, -1)


def fft2c(image: Tensor) -> Tensor:
    """Centred 2D FFT: image ``(..., H, W)`` real or complex -> k-space ``(..., H, W)`` complex."""
    shifted = torch.fft.ifftshift(image, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.fft2(shifted, norm="ortho"), dim=_DIMS)


def ifft2c(kspace: Tensor) -> Tensor:
    """Inverse of :func:`fft2c`: k-space ``(..., H, W)`` -> complex image ``(..., H, W)``."""
    shifted = torch.fft.ifftshift(kspace, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(shifted, norm="ortho"), dim=_DIMS)


def rfft2(image: Tensor) -> Tensor:
    """Half spectrum of a real image ``(..., H, W)`` -> complex ``(..., H, W // 2 + 1)``."""
    return torch.fft.rfft2(image, norm="ortho")


def irfft2(spectrum: Tensor, width: int) -> Tensor:
    """Real image ``(..., H, width)`` from a half spectrum ``(..., H, width // 2 + 1)``.

    The spectrum is taken as Hermitian: imaginary parts that a real image cannot
    have (DC and Nyquist columns) are ignored. ``width`` is required because an
    odd and an even width give the same half-spectrum shape. Done as two 1D
    transforms, which gives what ``torch.fft.irfft2`` gives with one copy of
    the spectrum less (about 20 % faster on CPU).
    """
    columns = torch.fft.ifft(spectrum, dim=-2, norm="ortho")
    return torch.fft.irfft(columns, n=width, dim=-1, norm="ortho")


def signed_index(index: Tensor, size: int) -> Tensor:
    """Wrap integer frequency indices into ``[-(size // 2), (size - 1) // 2]``.

    Matches ``torch.fft.fftfreq(size) * size``; for even sizes the Nyquist line is
    ``-size // 2``, which is its own negative.
    """
    return torch.remainder(index + size // 2, size) - size // 2


def rfft2_frequencies(
    height: int, width: int, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Signed integer frequencies of the half-spectrum layout.

    Returns ``ky`` of shape ``(H,)`` (rows of :func:`rfft2`) and ``kx`` of shape
    ``(W // 2 + 1,)`` (columns), both int64, in cycles per field of view. The
    Nyquist column of an even width is reported as ``-W // 2``.
    """
    ky = signed_index(torch.arange(height, device=device), height)
    kx = signed_index(torch.arange(width // 2 + 1, device=device), width)
    return ky, kx
