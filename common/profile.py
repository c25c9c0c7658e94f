"""The reference profile: the one contrast the whole federation trains toward.

A profile is a compact, scale-free summary of a site's reference cases
(DESIGN.md, "The method", step 2): foreground intensity landmarks at fixed
percentiles (as in Nyúl's method) and the radially averaged k-space power of
axial slices. It holds no voxels and no per-case values, only averages over at
least ``min_cases`` cases, which is why it may leave the site.

Landmarks are in *profile units*: each case's landmarks are divided by its own
99th-percentile landmark before averaging, so every profile's top landmark is
exactly 1.0 and no scanner gain survives. The server merges site profiles with
:func:`merge_profiles`; sites map their cases onto the merged profile with
:mod:`common.profile_mapping`.
"""

import itertools
import json
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.configs.profile import ProfileConfig
from common.configs.validation import parse_config
from common.errors import HarmonizationError, InputError

PROFILE_FORMAT_VERSION = 1
# An axial slice enters the spectrum if it holds at least this share of the
# fullest slice's foreground: the central slices, not the caps of the head.
SLICE_FOREGROUND_SHARE = 0.5
# Fewer foreground voxels than this make percentiles meaningless.
MIN_FOREGROUND_VOXELS = 100
# Normalized spatial frequency runs from 0 (DC) to 0.5 cycles per voxel (Nyquist).
NYQUIST = 0.5


class ReferenceProfile(BaseModel):
    """Foreground landmarks (profile units) and normalized radial k-space power."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Literal[1] = PROFILE_FORMAT_VERSION
    modality: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    percentiles: tuple[float, ...] = Field(min_length=2)
    landmarks: tuple[float, ...] = Field(min_length=2)
    radial_power: tuple[float, ...] = Field(min_length=4)
    n_cases: int = Field(ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "ReferenceProfile":
        if len(self.landmarks) != len(self.percentiles):
            raise ValueError(
                f"{len(self.landmarks)} landmarks for {len(self.percentiles)} percentiles"
            )
        if any(not 0.0 < p < 100.0 for p in self.percentiles) or not _increasing(self.percentiles):
            raise ValueError("percentiles must be strictly increasing inside (0, 100)")
        if not all(math.isfinite(v) for v in self.landmarks) or not _increasing(self.landmarks):
            raise ValueError("landmarks must be finite and strictly increasing")
        if self.landmarks[0] < 0.0 or abs(self.landmarks[-1] - 1.0) > 1e-9:
            raise ValueError("landmarks must start at >= 0 and end at exactly 1.0 (profile units)")
        power = self.radial_power
        if not all(math.isfinite(v) and v >= 0.0 for v in power) or abs(sum(power) - 1.0) > 1e-6:
            raise ValueError("radial_power must be finite, non-negative and sum to 1")
        return self

    def to_json(self) -> str:
        """Serialize for the wire and for model artifacts (floats round-trip exactly)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str) -> "ReferenceProfile":
        """Parse and validate a profile, raising a one-line error that names ``source``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{source}: not a valid reference profile JSON "
                f"({error.msg} at line {error.lineno}, column {error.colno})"
            ) from None
        if not isinstance(data, dict):
            raise InputError(
                f"{source}: a reference profile must be a JSON object, got {type(data).__name__}"
            )
        return parse_config(cls, data, source)


def _increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def _check_pair(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Validate a (volume, mask) pair and return the foreground values."""
    if volume.ndim != 3 or mask.shape != volume.shape:
        raise HarmonizationError(
            f"volume {volume.shape} and mask {mask.shape} must be 3D arrays of the same shape"
        )
    foreground = volume[mask.astype(bool)]
    if foreground.size < MIN_FOREGROUND_VOXELS:
        raise HarmonizationError(
            f"mask has {foreground.size} foreground voxels; "
            f"at least {MIN_FOREGROUND_VOXELS} are needed for intensity landmarks"
        )
    if not np.all(np.isfinite(foreground)):
        raise HarmonizationError("volume has NaN or infinite values inside the mask")
    return foreground


def foreground_landmarks(
    volume: np.ndarray, mask: np.ndarray, percentiles: Sequence[float]
) -> np.ndarray:
    """Intensities at ``percentiles`` of the masked foreground, in the volume's own units.

    Returns a float64 array of ``len(percentiles)`` non-decreasing values.
    """
    foreground = _check_pair(volume, mask)
    return np.percentile(foreground.astype(np.float64), np.asarray(percentiles, dtype=np.float64))


def radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    """Normalized radial frequency (cycles/voxel) of each ``rfft2`` coefficient.

    ``shape`` is an axial slice shape (X, Y); the result has shape (X, Y // 2 + 1),
    matching ``np.fft.rfft2(slice)``. Values run from 0 (DC) to about 0.707 in
    the corners; only 0..0.5 is binned.
    """
    fx = np.fft.fftfreq(shape[0])[:, None]
    fy = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fx**2 + fy**2)


def radial_bin_index(shape: tuple[int, int], n_bins: int) -> np.ndarray:
    """Radial bin of each ``rfft2`` coefficient, or ``n_bins`` beyond Nyquist (dropped)."""
    bins = np.floor(radial_frequency(shape) / NYQUIST * n_bins).astype(np.int64)
    return np.minimum(bins, n_bins)


def _fill_empty_bins(power: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Interpolate bins that no frequency fell into (tiny slices, many bins)."""
    filled = counts > 0
    if filled.all():
        return power
    centres = np.arange(power.size, dtype=np.float64)
    return np.interp(centres, centres[filled], power[filled])


def radial_power_profile(volume: np.ndarray, mask: np.ndarray, n_bins: int) -> np.ndarray:
    """Radially averaged 2D power spectrum of the axial slices that hold most foreground.

    Each whole slice ``volume[:, :, k]`` (background included, so its noise
    floor counts) is transformed with ``rfft2``; the mask only chooses slices.
    Power ``|F|^2`` is averaged over slices and over each of ``n_bins`` equal
    rings of normalized frequency 0..0.5, then divided by its sum, so the
    result (shape ``(n_bins,)``, float64) does not depend on intensity scale.
    """
    _check_pair(volume, mask)
    per_slice = mask.astype(bool).reshape(-1, mask.shape[2]).sum(axis=0)
    chosen = np.flatnonzero(per_slice >= SLICE_FOREGROUND_SHARE * per_slice.max())
    slices = volume[:, :, chosen].astype(np.float64)
    spectrum = np.fft.rfft2(slices, axes=(0, 1))  # (X, Y // 2 + 1, n_slices)
    power = np.mean(np.abs(spectrum) ** 2, axis=2)
    bins = radial_bin_index(volume.shape[:2], n_bins).ravel()
    sums = np.bincount(bins, weights=power.ravel(), minlength=n_bins + 1)[:n_bins]
    counts = np.bincount(bins, minlength=n_bins + 1)[:n_bins]
    radial = _fill_empty_bins(sums / np.maximum(counts, 1), counts)
    total = radial.sum()
    if not total > 0.0:
        raise HarmonizationError("volume is zero in every foreground slice: no k-space power")
    return radial / total


def fit_profile(
    cases: Sequence[tuple[np.ndarray, np.ndarray]], config: ProfileConfig, modality: str
) -> ReferenceProfile:
    """Average the scale-free landmarks and spectra of a site's reference cases.

    Refuses fewer than ``config.min_cases`` cases: a profile of one or two
    scans would come close to describing individual patients.
    """
    if len(cases) < config.min_cases:
        raise HarmonizationError(
            f"a reference profile needs at least {config.min_cases} cases "
            f"(profile.min_cases); {len(cases)} given"
        )
    landmarks, spectra = [], []
    for index, (volume, mask) in enumerate(cases):
        case_landmarks = foreground_landmarks(volume, mask, config.percentiles)
        top = case_landmarks[-1]
        if not top > 0.0 or case_landmarks[0] < 0.0:
            raise HarmonizationError(
                f"reference case {index}: foreground intensities run from {case_landmarks[0]:.4g} "
                f"to {top:.4g} (99th percentile); need non-negative values with positive signal"
            )
        landmarks.append(case_landmarks / top)
        spectra.append(radial_power_profile(volume, mask, config.n_bins))
    mean_landmarks = np.mean(landmarks, axis=0)
    if not _increasing(mean_landmarks.tolist()):
        raise HarmonizationError(
            "reference cases have too few distinct foreground intensities: landmarks at "
            f"percentiles {list(config.percentiles)} are {np.round(mean_landmarks, 4).tolist()}, "
            "which are not strictly increasing"
        )
    mean_power = np.mean(spectra, axis=0)
    return ReferenceProfile(
        modality=modality,
        percentiles=config.percentiles,
        landmarks=tuple(mean_landmarks.tolist()),
        radial_power=tuple((mean_power / mean_power.sum()).tolist()),
        n_cases=len(cases),
    )


def merge_profiles(profiles: Sequence[ReferenceProfile], min_cases: int) -> ReferenceProfile:
    """Consortium profile: case-count-weighted average of compatible site profiles.

    Landmarks and spectra are averaged with weights ``n_cases``; the merged
    ``n_cases`` is their sum. Profiles below ``min_cases`` or with another
    modality, percentile set or bin count are refused.
    """
    if not profiles:
        raise HarmonizationError("no reference profiles to merge: no site contributed one")
    first = profiles[0]
    for index, profile in enumerate(profiles):
        if profile.n_cases < min_cases:
            raise HarmonizationError(
                f"reference profile {index} was computed from {profile.n_cases} cases; "
                f"at least {min_cases} are required"
            )
        for field, expected, got in (
            ("modality", first.modality, profile.modality),
            ("percentiles", first.percentiles, profile.percentiles),
            ("radial bins", len(first.radial_power), len(profile.radial_power)),
        ):
            if got != expected:
                raise HarmonizationError(
                    f"reference profile {index} has {field} {got}, but profile 0 has {expected}; "
                    "all sites must use the same profile settings"
                )
    weights = np.array([p.n_cases for p in profiles], dtype=np.float64)
    landmarks = np.average([p.landmarks for p in profiles], axis=0, weights=weights)
    power = np.average([p.radial_power for p in profiles], axis=0, weights=weights)
    return ReferenceProfile(
        modality=first.modality,
        percentiles=first.percentiles,
        landmarks=tuple(landmarks.tolist()),
        radial_power=tuple((power / power.sum()).tolist()),
        n_cases=int(weights.sum()),
    )
