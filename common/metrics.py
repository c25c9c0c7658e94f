"""Harmonization metrics that do not mislead the way PSNR/SSIM can on MR images.

All are computed inside the brain mask and are scale-free where methods'
output units differ: a harmonizer is judged on whether the site effect is gone
and the anatomy untouched, not on absolute intensity units.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from common.errors import InputError

TISSUES = ("wm", "gm", "csf")


def tissue_means(image: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean intensity per tissue mask."""
    return {name: float(image[mask].mean()) for name, mask in masks.items()}


def scale_free(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """The image with the brain's 1st percentile at 0 and its median at 1.

    Methods differ in units and offsets (z-score and WhiteStripe centre on zero),
    so comparisons across methods use this affine-free form.
    """
    low, median = np.percentile(image[brain], [1.0, 50.0])
    return (image - low) / max(float(median - low), 1e-12)


def scale_free_tissue_means(
    image: np.ndarray, brain: np.ndarray, masks: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Tissue means of :func:`scale_free` images, so global units and offsets cancel."""
    return tissue_means(scale_free(image, brain), masks)


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


SLICE_MIN_WM_VOXELS = 50  # fewer and a slice's WM mean is a partial-volume fringe, not tissue


def wm_slice_means(image: np.ndarray, wm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean image inside the WM of each axial slice ``[:, :, z]``, and which slices count.

    A slice counts when it holds at least :data:`SLICE_MIN_WM_VOXELS` WM voxels.
    """
    counts = wm.sum(axis=(0, 1))
    sums = np.where(wm, image.astype(np.float64), 0.0).sum(axis=(0, 1))
    return sums / np.maximum(counts, 1), counts >= SLICE_MIN_WM_VOXELS


def slice_jitter(image: np.ndarray, truth: np.ndarray, wm: np.ndarray) -> float:
    """How much WM brightness jumps between adjacent axial slices beyond the truth; lower is better.

    Slice-wise processing (2D networks, per-slice normalization) can make WM
    brightness jump between neighbouring axial slices although the anatomy does
    not. For adjacent slices z, z+1 that both count (see :func:`wm_slice_means`),
    d(z) = log(m(z+1) / m(z)) and e = d_image - d_truth; the score is the root
    mean square of e after removing its mean, because a constant log slope (a
    linear bias ramp along z) is drift, not jitter. A global scale cancels in each
    ratio and a smooth bias field changes e only slowly, so both give about 0;
    alternate slices scaled by 1.02 give log(1.02). Means are clipped to a tiny
    positive value: a zero-centred image (z-score, WhiteStripe) can have
    non-positive WM means, so pass :func:`scale_free` images for such methods.

    Raises :class:`InputError` when fewer than 2 adjacent pairs count: a 0.0 would
    read as a perfect score for a mask that cannot be judged.
    """
    means, valid = wm_slice_means(image, wm)
    truth_means, _ = wm_slice_means(truth, wm)
    pairs = valid[:-1] & valid[1:]
    if pairs.sum() < 2:
        raise InputError(
            f"WM mask has {int(pairs.sum())} pairs of adjacent axial slices with >= "
            f"{SLICE_MIN_WM_VOXELS} WM voxels; slice_jitter needs at least 2"
        )
    d_image = np.diff(np.log(np.maximum(means, 1e-12)))[pairs]
    d_truth = np.diff(np.log(np.maximum(truth_means, 1e-12)))[pairs]
    return float(np.std(d_image - d_truth))


NOISE_SMOOTHING_SIGMA = 1.0  # voxels: the residual keeps what varies from voxel to voxel


def high_pass_noise(image: np.ndarray, wm: np.ndarray, brain: np.ndarray) -> float:
    """Standard deviation in WM of the :func:`scale_free` image minus its Gaussian smoothing.

    WM is nearly uniform, so what a sigma-1-voxel Gaussian removes there is mostly
    noise (or invented texture); lower is better, but an over-smoothed image also
    scores low, so read it beside the edge agreement. Tissue edges must not count:
    the WM mask is eroded by one voxel and the smoothing averages only voxels of
    that eroded mask (normalized convolution). A plain Gaussian would pull grey
    matter into the WM ring next to the edge, and a noise-free piecewise-constant
    head would score as high as a noisy scan. Invariant to scale and offset.
    """
    free = scale_free(image.astype(np.float64), brain)
    inner = ndimage.binary_erosion(wm)
    if not inner.any():
        raise InputError("WM mask is empty after a one-voxel erosion; noise_hf needs WM voxels")
    weight = inner.astype(np.float64)
    smooth = ndimage.gaussian_filter(free * weight, NOISE_SMOOTHING_SIGMA)
    smooth /= np.maximum(ndimage.gaussian_filter(weight, NOISE_SMOOTHING_SIGMA), 1e-12)
    return float((free - smooth)[inner].std())


def ratio_spread(ratios_per_site: Sequence[float]) -> float:
    """Coefficient of variation of one subject's WM/GM ratio across sites; lower is better."""
    return cross_site_cv(ratios_per_site)


HISTOGRAM_BINS = 64
HISTOGRAM_RANGE = (-0.5, 3.0)  # in :func:`scale_free` units


def normalized_histogram(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Brain-intensity histogram of the :func:`scale_free` image (sums to 1)."""
    values = scale_free(image, brain)[brain]
    counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE)
    counts = counts.astype(np.float64) + 1e-12
    return counts / counts.sum()


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence of two histograms, base 2, in [0, 1]."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sum(a * np.log2(a / b)))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def mean_pairwise_jsd(histograms: Sequence[np.ndarray]) -> float:
    """Mean JSD over all pairs of sites' histograms of one subject; lower is better (0 best)."""
    pairs = [
        jensen_shannon(histograms[i], histograms[j])
        for i in range(len(histograms))
        for j in range(i + 1, len(histograms))
    ]
    return float(np.mean(pairs))


def site_classifier_accuracy(
    histograms: np.ndarray, sites: Sequence[str], subjects: Sequence[str]
) -> float:
    """Leave-one-subject-out accuracy of telling the site from the histogram.

    Closer to chance (1 / number of sites) is better: a harmonized scan should
    not reveal where it was acquired. The features are the cumulative
    histograms, which shift smoothly when a tissue peak moves, so a linear model
    needs few subjects to find a site's signature.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scores = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        np.cumsum(np.asarray(histograms), axis=1),
        np.asarray(sites),
        groups=np.asarray(subjects),
        cv=LeaveOneGroupOut(),
    )
    return float(np.mean(scores))
