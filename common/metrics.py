"""Harmonization metrics that do not mislead the way PSNR/SSIM can on MR images.

All are computed inside the brain mask and are scale-free where methods'
output units differ: a harmonizer is judged on whether the site effect is gone
and the anatomy untouched, not on absolute intensity units.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

TISSUES = ("wm", "gm", "csf")


def tissue_means(image: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean intensity per tissue mask."""
    return {name: float(image[mask].mean()) for name, mask in masks.items()}


def scale_free_tissue_means(
    image: np.ndarray, brain: np.ndarray, masks: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Tissue means divided by the brain's median, so arbitrary global units cancel."""
    reference = float(np.median(image[brain]))
    return {name: value / reference for name, value in tissue_means(image, masks).items()}


def cross_site_cv(values_per_site: Sequence[float]) -> float:
    """Coefficient of variation across sites of one subject's tissue mean; lower is better."""
    values = np.asarray(values_per_site, dtype=np.float64)
    return float(values.std() / abs(values.mean()))


def scale_fitted_nmae(image: np.ndarray, truth: np.ndarray, brain: np.ndarray) -> float:
    """Mean absolute error after the best single scale fit, over mean |truth|; lower is better."""
    x, y = image[brain].astype(np.float64), truth[brain].astype(np.float64)
    scale = float(x @ y / max(x @ x, 1e-12))
    return float(np.abs(scale * x - y).mean() / np.abs(y).mean())


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    return np.sqrt(sum(ndimage.sobel(image.astype(np.float64), axis=a) ** 2 for a in range(3)))


def gradient_correlation(image: np.ndarray, truth: np.ndarray, brain: np.ndarray) -> float:
    """Pearson correlation of gradient magnitudes in the brain; higher (max 1) is better."""
    a = gradient_magnitude(image)[brain]
    b = gradient_magnitude(truth)[brain]
    return float(np.corrcoef(a, b)[0, 1])
