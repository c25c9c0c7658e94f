"""Map a volume onto a reference profile: the site's training targets and the Nyúl baseline.

Intensities are mapped piecewise-linearly from the volume's own foreground
landmarks to the profile's landmarks (Nyúl & Udupa, 1999; Nyúl, Udupa & Zhang,
IEEE TMI 2000), which puts every target in profile units: its 99th foreground
percentile lands on 1.0. Optionally the slices are first filtered toward the
profile's k-space power, so a blurrier or noisier site's targets get the
consortium's sharpness as well as its contrast.

Typical use at a site (bias correction first, see :mod:`common.bias_correction`)::

    normalizer = ProfileNormalizer(config, "T1w").fit(cases)   # local profile, sent out
    consortium = ProfileNormalizer.from_profile(merged_profile, config)
    target = consortium.transform(volume, mask)
"""

from collections.abc import Sequence

import numpy as np

from common.configs.profile import ProfileConfig
from common.errors import HarmonizationError
from common.profile import (
    NYQUIST,
    ReferenceProfile,
    fit_profile,
    foreground_landmarks,
    radial_frequency,
    radial_power_profile,
)

# Duplicate source landmarks (flat histograms) are pulled apart by this share of
# the top landmark, so the map stays a function and monotone.
LANDMARK_MIN_GAP = 1e-6
# Extrapolation beyond the outer landmarks is at most this many times steeper
# than the straight line from 0 to the top landmark: a guard for flat volumes.
MAX_EXTRAPOLATION_SLOPE_RATIO = 10.0


def landmark_knots(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(xp, fp)`` of the piecewise-linear map from ``source`` to ``target`` landmarks.

    ``xp`` is strictly increasing (duplicates are separated by a tiny gap) and
    ``fp`` non-decreasing, so the map is monotone. An anchor 0 -> 0 is added
    below the first landmark when that landmark is positive.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    top = source[-1]
    if not top > 0.0:
        raise HarmonizationError(
            f"foreground 99th percentile is {top:.4g}; a volume needs positive signal "
            "to be mapped onto a reference profile"
        )
    if source[0] > 0.0:
        source = np.concatenate([[0.0], source])
        target = np.concatenate([[0.0], target])
    steps = np.arange(source.size) * LANDMARK_MIN_GAP * top
    xp = np.maximum.accumulate(source - steps) + steps
    fp = np.maximum.accumulate(target)
    return xp, fp


def apply_knots(volume: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear map through the knots, extrapolating the outer segments linearly."""
    mapped = np.interp(volume, xp, fp)
    ceiling = MAX_EXTRAPOLATION_SLOPE_RATIO * max(fp[-1], 1e-12) / xp[-1]
    slope_low = min((fp[1] - fp[0]) / (xp[1] - xp[0]), ceiling)
    slope_high = min((fp[-1] - fp[-2]) / (xp[-1] - xp[-2]), ceiling)
    below, above = volume < xp[0], volume > xp[-1]
    mapped[below] = fp[0] + (volume[below] - xp[0]) * slope_low
    mapped[above] = fp[-1] + (volume[above] - xp[-1]) * slope_high
    return mapped


def sharpness_gain(
    profile_power: np.ndarray, volume_power: np.ndarray, bounds: tuple[float, float]
) -> np.ndarray:
    """Radial amplitude gain ``sqrt(P_profile / P_volume)``, smoothed and clipped to ``bounds``.

    Both spectra are normalized to sum 1, shape ``(n_bins,)``. The gain is
    smoothed over three neighbouring bins in the log domain, so a noisy
    spectrum does not turn into a comb filter.
    """
    ratio = np.asarray(profile_power) / np.maximum(np.asarray(volume_power), 1e-30)
    log_gain = 0.5 * np.log(np.maximum(ratio, 1e-30))
    padded = np.pad(log_gain, 1, mode="edge")
    smoothed = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    return np.clip(np.exp(smoothed), bounds[0], bounds[1])


def match_sharpness(
    volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile, bounds: tuple[float, float]
) -> np.ndarray:
    """Filter every axial slice so the volume's radial power moves toward the profile's.

    The gain is a smooth function of radial frequency, so it acts as a
    zero-phase, isotropic in-plane filter: it sharpens a blurry site and
    damps a noisy one without shifting edges. Shape (X, Y, Z) in and out.
    """
    n_bins = len(profile.radial_power)
    gain_bins = sharpness_gain(
        np.asarray(profile.radial_power), radial_power_profile(volume, mask, n_bins), bounds
    )
    centres = (np.arange(n_bins) + 0.5) * NYQUIST / n_bins
    gain = np.interp(radial_frequency(volume.shape[:2]), centres, gain_bins)
    spectrum = np.fft.rfft2(volume.astype(np.float64), axes=(0, 1)) * gain[:, :, None]
    return np.fft.irfft2(spectrum, s=volume.shape[:2], axes=(0, 1))


def _map_landmarks(data: np.ndarray, mask: np.ndarray, profile: ReferenceProfile) -> np.ndarray:
    source = foreground_landmarks(data, mask, profile.percentiles)
    xp, fp = landmark_knots(source, np.asarray(profile.landmarks))
    return apply_knots(data, xp, fp)


def map_to_profile(
    volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile, config: ProfileConfig
) -> np.ndarray:
    """The volume in profile units, float32 (X, Y, Z), landmarks taken from ``mask``.

    With ``config.match_sharpness`` the intensity-mapped volume is filtered
    toward the profile's spectrum and then mapped once more: the intensity map
    itself changes the spectrum (it narrows a noisy histogram), so the gain is
    measured after it, and the second map puts the landmarks back exactly.
    """
    mapped = _map_landmarks(volume.astype(np.float64), mask, profile)
    if config.match_sharpness:
        bounds = (config.sharpness_gain_min, config.sharpness_gain_max)
        mapped = _map_landmarks(match_sharpness(mapped, mask, profile, bounds), mask, profile)
    return mapped.astype(np.float32)


class ProfileNormalizer:
    """Fit a reference profile from cases, or adopt one, then map volumes onto it."""

    def __init__(self, config: ProfileConfig, modality: str) -> None:
        self.config = config
        self.modality = modality
        self._profile: ReferenceProfile | None = None

    @classmethod
    def from_profile(cls, profile: ReferenceProfile, config: ProfileConfig) -> "ProfileNormalizer":
        """A normalizer that maps onto a given (e.g. the merged consortium) profile."""
        normalizer = cls(config, profile.modality)
        normalizer._profile = profile
        return normalizer

    def fit(self, cases: Sequence[tuple[np.ndarray, np.ndarray]]) -> "ProfileNormalizer":
        """Compute the profile of ``(volume, mask)`` reference cases; see :func:`fit_profile`."""
        self._profile = fit_profile(cases, self.config, self.modality)
        return self

    @property
    def profile(self) -> ReferenceProfile:
        if self._profile is None:
            raise HarmonizationError(
                "ProfileNormalizer has no reference profile yet: call fit() or build it "
                "with ProfileNormalizer.from_profile() before transform()"
            )
        return self._profile

    def transform(self, volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Map one volume onto the profile; see :func:`map_to_profile`."""
        return map_to_profile(volume, mask, self.profile, self.config)
