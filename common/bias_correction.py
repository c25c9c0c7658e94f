"""N4 bias-field correction of reference cases before they become training targets.

Receive-coil sensitivity and B1 inhomogeneity multiply an MR image by a smooth
field, so the same tissue is brighter near the coil than far from it. Left in
a target, that shading would be learned as part of the reference contrast.
N4 (Tustison et al., IEEE TMI 2010) estimates the log of the field with
B-splines by sharpening the log-intensity histogram. We use SimpleITK's
implementation and do not reimplement it.

The field is estimated on a shrunken copy (fast) and evaluated at full
resolution from its B-spline control points. ITK's N4 uses no random
sampling; a single thread keeps the floating-point sums in a fixed order, so
the output is bit-identical from run to run.
"""

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import SimpleITK as sitk  # noqa: N813 (the name every SimpleITK user knows)

from common.errors import HarmonizationError

logger = logging.getLogger(__name__)

DEFAULT_ITERATIONS: tuple[int, ...] = (50, 50, 30, 20)
# Voxel size (mm) of the shrunken grid the field is fitted on (see shrink_for).
N4_GRID_MM = 4.0
# Below this many positive foreground voxels the B-spline fit is unconstrained.
MIN_MASK_VOXELS = 1000
# At least this many voxels must stay in the mask after shrinking.
MIN_SHRUNK_MASK_VOXELS = 200


def _to_image(array: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    """SimpleITK reads numpy axis 0 as its last axis, so the spacing is given reversed."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    return image


def _check_inputs(
    volume: np.ndarray,
    mask: np.ndarray,
    spacing: Sequence[float],
    shrink_factor: int,
    iterations: Sequence[int],
) -> np.ndarray:
    """Validate the arguments and return the mask of positive foreground voxels."""
    if volume.ndim != 3 or mask.shape != volume.shape:
        raise HarmonizationError(
            f"bias correction needs a 3D volume and a mask of the same shape; "
            f"got {volume.shape} and {mask.shape}"
        )
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise HarmonizationError(f"voxel spacing {tuple(spacing)} must be three positive numbers")
    if shrink_factor < 1:
        raise HarmonizationError(f"shrink_factor = {shrink_factor}; must be >= 1")
    if not iterations or any(n < 1 for n in iterations):
        raise HarmonizationError(
            f"iterations = {tuple(iterations)}; need one positive count per fitting level"
        )
    fit_mask = mask.astype(bool) & (volume > 0)
    if not np.all(np.isfinite(volume[fit_mask])):
        raise HarmonizationError("volume has NaN or infinite values inside the mask")
    count = int(fit_mask.sum())
    if count < MIN_MASK_VOXELS:
        raise HarmonizationError(
            f"mask holds {count} voxels with positive signal; N4 bias correction needs "
            f"at least {MIN_MASK_VOXELS}"
        )
    return fit_mask


def correct_bias_field(
    volume: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    shrink_factor: int = 2,
    iterations: Sequence[int] = DEFAULT_ITERATIONS,
) -> np.ndarray:
    """Divide ``volume`` (X, Y, Z) by its N4-estimated bias field; float32, same shape.

    ``spacing`` is the voxel size in mm along X, Y, Z. ``iterations`` holds the
    maximum iterations per fitting level (the control-point grid doubles at
    each level). The field is fitted where ``mask`` is true and the volume is
    positive, and the result is rescaled so its mean inside ``mask`` equals the
    input's: N4 fixes shading, not global scale.
    """
    fit_mask = _check_inputs(volume, mask, spacing, shrink_factor, iterations)
    data = volume.astype(np.float32)
    image = _to_image(np.maximum(data, 0.0), spacing)
    mask_image = _to_image(fit_mask.astype(np.uint8), spacing)
    shrink = [shrink_factor] * 3
    small_image = sitk.Shrink(image, shrink)
    small_mask = sitk.Shrink(mask_image, shrink)
    if int(sitk.GetArrayViewFromImage(small_mask).sum()) < MIN_SHRUNK_MASK_VOXELS:
        raise HarmonizationError(
            f"mask is too small for N4 at shrink_factor {shrink_factor}: fewer than "
            f"{MIN_SHRUNK_MASK_VOXELS} voxels remain after shrinking; use a smaller shrink_factor"
        )

    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(n) for n in iterations])
    corrector.SetNumberOfThreads(1)
    corrector.Execute(small_image, small_mask)
    log_field = sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image))
    corrected = data / np.exp(log_field).astype(np.float32)
    logger.debug(
        "N4: %d levels, %d iterations in the last, log field range %.3f..%.3f",
        len(iterations),
        corrector.GetElapsedIterations(),
        float(log_field[fit_mask].min()),
        float(log_field[fit_mask].max()),
    )

    inside = mask.astype(bool)
    corrected_mean = float(corrected[inside].mean(dtype=np.float64))
    original_mean = float(data[inside].mean(dtype=np.float64))
    if corrected_mean != 0.0:
        corrected *= np.float32(original_mean / corrected_mean)
    return corrected


def apply_bias_correction(
    volume: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    method: Literal["none", "n4"],
) -> np.ndarray:
    """Targets and inputs as configured by ``ProfileConfig.bias_correction``; float32 out."""
    if method == "n4":
        return correct_bias_field(volume, mask, spacing, shrink_factor=shrink_for(spacing))
    return volume.astype(np.float32)


def shrink_for(spacing: tuple[float, float, float]) -> int:
    """Shrink factor that fits the field on a grid of about 4 mm voxels.

    A bias field varies over centimetres, so 4 mm resolves it; a 1 mm scan then
    costs a quarter of what shrink 2 would (N4 time grows with the voxel count),
    which keeps ``apply`` inside its time budget. 2 mm scans keep shrink 2.
    """
    return max(1, round(N4_GRID_MM / min(spacing)))
