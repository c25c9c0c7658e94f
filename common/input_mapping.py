"""What the network sees: inputs landmark-mapped onto the reference contrast first.

A random monotone intensity curve is a global property of a scan; a small
U-Net with a limited field of view learns to undo it only slowly, while a
piecewise-linear landmark map (Nyúl) undoes it almost exactly and for free. So
the harmonizer is "landmark map, then U-Net": the map removes the global
contrast and scale, and the network learns what no global map can remove —
shading, blur, noise, ringing and residual local contrast.

At ``apply`` a whole volume is mapped from its own foreground landmarks onto
the profile's. In training the altered slice is mapped onto its clean target
slice's landmarks, which is what the volume map does to a slice when the
alteration is global.

The landmarks are percentiles of the foreground, so they move with anatomy as
well as with contrast: a subject with more grey matter than the profile's
cases has its percentiles lower, and the map bends its tissue levels. Training
never asks the network to undo that (input and target share their landmarks),
and the network passes it through. A scan acquired with
the reference protocol needs no contrast change, so ``"scale"`` only scales it
(its top landmark onto the profile's) and keeps its own contrast
(docs/training-targets.md, "Stop 32").
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from common.errors import InputError
from common.profile import ReferenceProfile, foreground_landmarks
from common.profile_mapping import (
    LANDMARK_MIN_GAP,
    MAX_EXTRAPOLATION_SLOPE_RATIO,
    apply_knots,
    landmark_knots,
)

InputMapping = Literal["landmarks", "scale"]
INPUT_MAPPINGS: tuple[InputMapping, ...] = ("landmarks", "scale")


def map_volume_to_profile(
    volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile
) -> np.ndarray:
    """The network input for a whole (X, Y, Z) volume, float32 in profile units."""
    source = foreground_landmarks(volume, mask, profile.percentiles)
    xp, fp = landmark_knots(source, np.asarray(profile.landmarks))
    return apply_knots(volume.astype(np.float64), xp, fp).astype(np.float32)


def scale_volume_to_profile(
    volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile
) -> np.ndarray:
    """A reference-protocol volume in profile units by one factor, float32: contrast kept."""
    top = foreground_landmarks(volume, mask, profile.percentiles[-1:])[0]
    if top <= 0:
        raise InputError(
            f"the foreground's {profile.percentiles[-1]:g}th percentile is {top:g}; "
            "a scan with no positive foreground cannot be scaled"
        )
    return (volume.astype(np.float64) * (profile.landmarks[-1] / top)).astype(np.float32)


def volume_input(
    volume: np.ndarray, mask: np.ndarray, profile: ReferenceProfile, mapping: InputMapping
) -> np.ndarray:
    """The network input for a whole volume: landmark-mapped, or only scaled."""
    if mapping == "scale":
        return scale_volume_to_profile(volume, mask, profile)
    return map_volume_to_profile(volume, mask, profile)


def slice_landmarks(
    images: torch.Tensor, masks: torch.Tensor, percentiles: Sequence[float]
) -> torch.Tensor:
    """Foreground percentiles of each slice: (B, H, W) images -> (B, L) landmarks."""
    nan = torch.tensor(float("nan"), device=images.device, dtype=images.dtype)
    values = torch.where(masks, images, nan).flatten(1)
    q = torch.tensor([p / 100.0 for p in percentiles], device=images.device, dtype=images.dtype)
    return torch.nanquantile(values, q, dim=1).T.nan_to_num(0.0)


def map_slices(images: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batched piecewise-linear map from ``source`` (B, L) to ``target`` (B, L) landmarks.

    ``images`` is (B, ...): every value of row b takes row b's map, so all
    slices of a stack (B, C, H, W) are mapped alike, as a whole volume is.
    Mirrors :func:`common.profile_mapping.landmark_knots` and ``apply_knots``:
    an anchor 0 -> 0, strictly increasing knots, and linear extrapolation of
    the outer segments with their slopes capped for near-flat slices.
    """
    batch = images.shape[0]
    zeros = source.new_zeros(batch, 1)
    xp = torch.cat([zeros, source.clamp_min(0.0)], dim=1)
    fp = torch.cat([zeros, target.clamp_min(0.0)], dim=1)
    top = xp[:, -1:].clamp_min(1e-6)
    steps = torch.arange(xp.shape[1], device=xp.device, dtype=xp.dtype) * LANDMARK_MIN_GAP * top
    xp = torch.cummax(xp - steps, dim=1).values + steps
    fp = torch.cummax(fp, dim=1).values
    slopes = (fp[:, 1:] - fp[:, :-1]) / (xp[:, 1:] - xp[:, :-1])
    ceiling = MAX_EXTRAPOLATION_SLOPE_RATIO * fp[:, -1:].clamp_min(1e-12) / top
    outer = torch.zeros_like(slopes, dtype=torch.bool)
    outer[:, 0] = outer[:, -1] = True
    slopes = torch.where(outer, torch.minimum(slopes, ceiling), slopes)
    flat = images.reshape(batch, -1).contiguous()
    segment = (torch.searchsorted(xp[:, 1:-1].contiguous(), flat, right=True)).clamp(
        0, slopes.shape[1] - 1
    )
    start_x = xp.gather(1, segment)
    start_f = fp.gather(1, segment)
    mapped = start_f + (flat - start_x) * slopes.gather(1, segment)
    return mapped.reshape(images.shape)
