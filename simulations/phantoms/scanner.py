"""Scanner effects: what a site's hardware and reconstruction do to the ideal image.

Applied in the order the physics happens: the receive-coil sensitivity shades
the object (bias field), the scanner samples a limited, apodized part of k-space
(blur and Gibbs ringing), thermal noise enters the complex signal (Rician noise
in the magnitude), and the reconstruction scales the result (gain and offset).

:class:`ScannerEffects` is what a site is configured with; :func:`sample_effects`
draws the per-scan values (:class:`AppliedEffects`) and :func:`apply_effects`
applies them deterministically, so every scan can be replayed from the manifest.
"""

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulations.phantoms.fields import smooth_random_field

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
KSPACE_PAD_VOXELS = 8
BIAS_STRENGTH_RANGE = (0.5, 1.5)
BIAS_SCALE_RANGE = (0.8, 1.25)

BlurMm = Annotated[float, Field(ge=0.0, le=12.0)]
KeptFraction = Annotated[float, Field(gt=0.25, le=1.0)]


class ScannerEffects(BaseModel):
    """A site's scanner, as configured. Axis order of tuples is (x, y, z) in RAS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snr: float | None = Field(
        default=40.0, ge=2.0, le=1000.0, description="mean WM signal / noise sigma; None: no noise"
    )
    bias_strength: float = Field(
        default=0.0, ge=0.0, le=0.5, description="typical SD of the log bias field"
    )
    bias_scale_mm: float = Field(default=100.0, ge=30.0, le=400.0)
    blur_fwhm_mm: tuple[BlurMm, BlurMm, BlurMm] = (0.0, 0.0, 0.0)
    kspace_fraction: tuple[KeptFraction, KeptFraction, KeptFraction] = (1.0, 1.0, 1.0)
    gain: float = Field(default=1000.0, gt=0.0, le=1e6)
    gain_jitter: float = Field(default=0.05, ge=0.0, le=0.5)
    offset: float = Field(default=0.0, ge=0.0, le=1e4)


class AppliedEffects(BaseModel):
    """The effects one scan actually received; enough to replay it exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bias_strength: float
    bias_scale_mm: float
    bias_seed: int
    blur_fwhm_mm: tuple[float, float, float]
    kspace_fraction: tuple[float, float, float]
    snr: float | None
    noise_seed: int
    gain: float
    offset: float


def sample_effects(config: ScannerEffects, rng: np.random.Generator) -> AppliedEffects:
    """Draw one scan's effects from a site's configuration.

    Distributions: bias strength = configured x U(0.5, 1.5) and bias scale =
    configured x U(0.8, 1.25) with a fresh random pattern (coil loading and head
    position change per scan); gain = configured x exp(N(0, gain_jitter)) (receiver
    auto-scaling). Blur, k-space extent, SNR and offset are fixed by the hardware
    and protocol and taken as configured.
    """
    return AppliedEffects(
        bias_strength=config.bias_strength * float(rng.uniform(*BIAS_STRENGTH_RANGE)),
        bias_scale_mm=config.bias_scale_mm * float(rng.uniform(*BIAS_SCALE_RANGE)),
        bias_seed=int(rng.integers(2**32)),
        blur_fwhm_mm=config.blur_fwhm_mm,
        kspace_fraction=config.kspace_fraction,
        snr=config.snr,
        noise_seed=int(rng.integers(2**32)),
        gain=config.gain * float(np.exp(config.gain_jitter * rng.standard_normal())),
        offset=config.offset,
    )


def bias_field(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    strength: float,
    scale_mm: float,
    seed: int,
    brain: np.ndarray,
) -> np.ndarray:
    """Smooth multiplicative field exp(strength x unit field), mean 1 inside ``brain``.

    Normalizing inside the brain keeps shading separate from the global gain.
    """
    if strength == 0.0:
        return np.ones(shape, dtype=np.float32)
    unit = smooth_random_field(shape, spacing_mm, scale_mm, np.random.default_rng(seed))
    field = np.exp(strength * unit)
    return (field / field[brain].mean()).astype(np.float32)


def _axis_transfer(
    size: int, spacing_mm: float, fwhm_mm: float, fraction: float, *, half: bool
) -> np.ndarray:
    """1D k-space weights: Gaussian apodization times a box that keeps ``fraction`` of k."""
    freqs = np.fft.rfftfreq(size, d=spacing_mm) if half else np.fft.fftfreq(size, d=spacing_mm)
    sigma_mm = fwhm_mm / FWHM_PER_SIGMA
    weights = np.exp(-2.0 * (np.pi * sigma_mm * freqs) ** 2)
    nyquist = 0.5 / spacing_mm
    weights[np.abs(freqs) > fraction * nyquist + 1e-9] = 0.0
    return weights


def kspace_filter(
    volume: np.ndarray,
    spacing_mm: tuple[float, float, float],
    blur_fwhm_mm: tuple[float, float, float],
    kspace_fraction: tuple[float, float, float],
) -> np.ndarray:
    """Resolution loss and Gibbs ringing of a (X, Y, Z) volume, through its 3D spectrum.

    A Gaussian of FWHM ``blur_fwhm_mm`` per axis multiplies the spectrum (apodization,
    T2 decay over the echo train, thick slices); a hard cut keeps only the central
    ``kspace_fraction`` of each axis (a smaller acquired matrix), which rings at
    edges. The volume is zero-padded first so that nothing wraps around.
    """
    if all(f == 0.0 for f in blur_fwhm_mm) and all(k == 1.0 for k in kspace_fraction):
        return volume.astype(np.float32, copy=True)
    padded = np.pad(volume, KSPACE_PAD_VOXELS)
    spectrum = np.fft.rfftn(padded, axes=(0, 1, 2))
    for axis in range(3):
        transfer = _axis_transfer(
            padded.shape[axis],
            spacing_mm[axis],
            blur_fwhm_mm[axis],
            kspace_fraction[axis],
            half=axis == 2,
        )
        view = [1, 1, 1]
        view[axis] = transfer.size
        spectrum *= transfer.reshape(view)
    filtered = np.fft.irfftn(spectrum, s=padded.shape, axes=(0, 1, 2))
    crop = tuple(slice(KSPACE_PAD_VOXELS, KSPACE_PAD_VOXELS + n) for n in volume.shape)
    return filtered[crop].astype(np.float32)


def add_rician_noise(volume: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Magnitude of (signal + complex Gaussian noise of SD ``sigma`` per channel).

    Thermal noise is Gaussian in the real and imaginary channels; taking the
    magnitude makes it Rician, Rayleigh where there is no signal.
    """
    rng = np.random.default_rng(seed)
    real = volume + np.float32(sigma) * rng.standard_normal(volume.shape, dtype=np.float32)
    imaginary = np.float32(sigma) * rng.standard_normal(volume.shape, dtype=np.float32)
    return np.hypot(real, imaginary).astype(np.float32)


def apply_effects(
    signal: np.ndarray,
    applied: AppliedEffects,
    spacing_mm: tuple[float, float, float],
    brain: np.ndarray,
    reference_signal: float,
) -> np.ndarray:
    """Turn an ideal (X, Y, Z) image into the site's scan; deterministic given ``applied``.

    ``brain`` (bool, same shape) is where the bias field has mean 1;
    ``reference_signal`` is the mean WM signal of the ideal image, so the noise
    SD is reference_signal / snr before the gain.
    """
    shape = signal.shape
    field = bias_field(
        shape, spacing_mm, applied.bias_strength, applied.bias_scale_mm, applied.bias_seed, brain
    )
    image = kspace_filter(signal * field, spacing_mm, applied.blur_fwhm_mm, applied.kspace_fraction)
    if applied.snr is not None:
        image = add_rician_noise(image, reference_signal / applied.snr, applied.noise_seed)
    else:
        image = np.abs(image)
    return (image * np.float32(applied.gain) + np.float32(applied.offset)).astype(np.float32)
