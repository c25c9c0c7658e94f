"""Classical intensity-harmonization baselines the learned harmonizer must beat.

These are the methods a consortium would use without federated learning:
z-score, WhiteStripe (Shinohara et al., NeuroImage Clin 2014), Nyúl landmark
mapping (Nyúl & Udupa, MRM 1999; Nyúl et al., IEEE TMI 2000), and the
strongest pipeline an expert would build by hand: N4 bias correction, then
Nyúl, with and without light smoothing (σ 0.5 voxel).

All of them are global intensity maps (N4 adds a smooth multiplicative field):
they cannot remove blur, noise, ringing or local contrast differences, which
is exactly what the harmonizer is for.

The intensity-normalization package was not used: it pins old versions of
numpy, scipy and friends that conflict with this project's environment, so the
three methods are written here (WhiteStripe) or reuse the project's own code
(Nyúl landmarks from :mod:`common.input_mapping`, N4 from
:mod:`common.bias_correction`).

The Nyúl profile must be fitted by the caller on the reference site's
reference cases (:func:`common.profile.fit_profile`), never on the scan being
harmonized.
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import find_peaks

from common.bias_correction import correct_bias_field
from common.errors import InputError
from common.input_mapping import map_volume_to_profile
from common.profile import ReferenceProfile

Spacing = tuple[float, float, float]
Baseline = Callable[[np.ndarray, np.ndarray, Spacing, ReferenceProfile], np.ndarray]

# WhiteStripe histogram: bins over the foreground below its 99th percentile
# (the top tail is vessels and fat, not WM), smoothed by a Gaussian kernel.
WHITE_STRIPE_BINS = 256
WHITE_STRIPE_SMOOTHING_BINS = 3.0
WHITE_STRIPE_TOP_PERCENTILE = 99.0
# A histogram bump lower than this share of the tallest one is noise, not a tissue mode.
WHITE_STRIPE_MIN_PROMINENCE = 0.05
# Fewer stripe voxels than this make its mean and std meaningless.
MIN_STRIPE_VOXELS = 10


def _foreground(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Validate a (volume, mask) pair and return the foreground values as float64."""
    if volume.ndim != 3 or mask.shape != volume.shape:
        raise InputError(
            f"volume {volume.shape} and mask {mask.shape} must be 3D arrays of the same shape"
        )
    values = volume[mask.astype(bool)].astype(np.float64)
    if values.size == 0:
        raise InputError("mask is empty: no foreground voxels to normalize by")
    if not np.all(np.isfinite(values)):
        raise InputError("volume has NaN or infinite values inside the mask")
    return values


def _scale(volume: np.ndarray, center: float, spread: float, what: str) -> np.ndarray:
    if not spread > 0.0:
        raise InputError(f"{what} intensities are constant (std {spread:.4g}); cannot normalize")
    return ((volume.astype(np.float64) - center) / spread).astype(np.float32)


def zscore(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fixes global gain and offset (foreground mean 0, std 1); no shading, blur or noise."""
    values = _foreground(volume, mask)
    return _scale(volume, float(values.mean()), float(values.std()), "foreground")


def _white_matter_mode(values: np.ndarray) -> float:
    """Intensity of the highest-intensity peak of the smoothed foreground histogram (T1w WM)."""
    top = np.percentile(values, WHITE_STRIPE_TOP_PERCENTILE)
    counts, edges = np.histogram(values[values <= top], bins=WHITE_STRIPE_BINS)
    smoothed = gaussian_filter1d(counts.astype(np.float64), WHITE_STRIPE_SMOOTHING_BINS)
    # Pad so a mode in the last bin still counts as a peak.
    padded = np.concatenate([[0.0], smoothed, [0.0]])
    peaks, _ = find_peaks(padded, prominence=WHITE_STRIPE_MIN_PROMINENCE * smoothed.max())
    if peaks.size == 0:
        raise InputError("foreground histogram has no mode; WhiteStripe cannot find white matter")
    index = int(peaks[-1]) - 1
    return float(0.5 * (edges[index] + edges[index + 1]))


def white_stripe(volume: np.ndarray, mask: np.ndarray, width: float = 0.05) -> np.ndarray:
    """Fixes global gain and offset by the T1w WM stripe (WM -> 0); no shading, blur or noise.

    Shinohara et al., "Statistical normalization techniques for magnetic
    resonance imaging", NeuroImage: Clinical 6 (2014) 9-19. The WM mode is the
    highest-intensity peak of the smoothed foreground histogram; the stripe is
    the voxels whose intensity quantile lies within ``width`` of the mode's
    quantile, and the volume is normalized by the stripe's mean and std.
    Written here; the intensity-normalization package was not used because it
    pins old dependencies.
    """
    if not 0.0 < width < 0.5:
        raise InputError(f"white_stripe width = {width}; must lie in (0, 0.5)")
    values = _foreground(volume, mask)
    mode = _white_matter_mode(values)
    mode_quantile = float(np.mean(values <= mode))
    low, high = np.quantile(
        values, [max(mode_quantile - width, 0.0), min(mode_quantile + width, 1.0)]
    )
    stripe = values[(values >= low) & (values <= high)]
    if stripe.size < MIN_STRIPE_VOXELS:
        raise InputError(
            f"white stripe holds {stripe.size} voxels (width {width}); "
            f"need at least {MIN_STRIPE_VOXELS}: use a larger mask or width"
        )
    return _scale(volume, float(stripe.mean()), float(stripe.std()), "white stripe")


def nyul(volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile) -> np.ndarray:
    """Fixes any global monotone contrast curve (landmarks -> profile); no shading, blur, noise."""
    _foreground(volume, mask)
    return map_volume_to_profile(volume, mask.astype(bool), profile)


def n4_nyul(
    volume: np.ndarray,
    mask: np.ndarray,
    spacing: Spacing,
    profile: ReferenceProfile,
    smoothing_sigma_voxels: float = 0.0,
) -> np.ndarray:
    """Fixes smooth shading (N4) and global contrast (Nyúl); smoothing trades noise for blur.

    ``smoothing_sigma_voxels`` is the Gaussian sigma in voxels applied after
    the mapping; 0 means none.
    """
    if not (np.isfinite(smoothing_sigma_voxels) and smoothing_sigma_voxels >= 0.0):
        raise InputError(
            f"smoothing_sigma_voxels = {smoothing_sigma_voxels}; must be a finite number >= 0"
        )
    _foreground(volume, mask)
    corrected = correct_bias_field(volume, mask.astype(bool), spacing)
    mapped = nyul(corrected, mask, profile)
    if smoothing_sigma_voxels > 0.0:
        mapped = gaussian_filter(mapped, sigma=smoothing_sigma_voxels).astype(np.float32)
    return mapped


def _zscore(volume: np.ndarray, mask: np.ndarray, _s: Spacing, _p: ReferenceProfile) -> np.ndarray:
    return zscore(volume, mask)


def _white_stripe(
    volume: np.ndarray, mask: np.ndarray, _s: Spacing, _p: ReferenceProfile
) -> np.ndarray:
    return white_stripe(volume, mask)


def _nyul(
    volume: np.ndarray, mask: np.ndarray, _s: Spacing, profile: ReferenceProfile
) -> np.ndarray:
    return nyul(volume, mask, profile)


def _n4_nyul_smooth(
    volume: np.ndarray, mask: np.ndarray, spacing: Spacing, profile: ReferenceProfile
) -> np.ndarray:
    return n4_nyul(volume, mask, spacing, profile, smoothing_sigma_voxels=0.5)


# Display name -> (volume, mask, spacing, profile) -> harmonized volume, in report order.
BASELINES: Mapping[str, Baseline] = MappingProxyType(
    {
        "z-score": _zscore,
        "WhiteStripe": _white_stripe,
        "Nyul": _nyul,
        "N4 + Nyul": n4_nyul,
        "N4 + Nyul + smoothing (0.5 vox)": _n4_nyul_smooth,
    }
)
