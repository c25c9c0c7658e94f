"""Full-reference quality scores on constructed cases with known answers."""

import itertools

import numpy as np
import pytest
from scipy import ndimage

from common.errors import InputError
from common.image_quality import (
    FULL_REFERENCE_BETTER,
    HAARPSI_ALPHA,
    HAARPSI_C,
    MIN_SIDE,
    PSNR_CAP_DB,
    full_reference_scores,
    haarpsi,
)
from tests.conftest import synthetic_head

KEYS = ("haarpsi", "ssim", "psnr")


def textured_truth(
    shape: tuple[int, int, int] = (91, 109, 6), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic head with smooth texture (so every Haar scale sees structure) and its mask."""
    rng = np.random.default_rng(seed)
    head = synthetic_head(shape, seed=seed, noise=0.0).astype(np.float64)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    mask = head > 0.1
    truth = np.where(mask, np.clip(head * (1.0 + 0.8 * texture), 0.0, None), 0.0)
    return truth.astype(np.float32), mask


def direct_haarpsi(image: np.ndarray, reference: np.ndarray, data_range: float) -> float:
    """Slow HaarPSI straight from the paper's formulas, with explicit 2D filter kernels."""
    f1, f2 = (255.0 / data_range * np.asarray(x, np.float64) for x in (image, reference))
    f1, f2 = (np.pad(f, [(0, s % 2) for s in f.shape], mode="edge") for f in (f1, f2))
    f1, f2 = (ndimage.correlate(f, np.full((2, 2), 0.25), origin=-1)[::2, ::2] for f in (f1, f2))

    def coefficient(f: np.ndarray, j: int, k: int) -> np.ndarray:
        n = 2**j
        h = np.full(n, 2.0 ** (-j / 2))
        g = np.where(np.arange(n) < n // 2, -h, h)
        kernel = np.outer(g, h) if k == 0 else np.outer(h, g)
        return np.abs(ndimage.correlate(f, kernel, mode="reflect"))

    numerator = denominator = 0.0
    for k in (0, 1):
        local = 0.0
        for j in (1, 2):
            a, b = coefficient(f1, j, k), coefficient(f2, j, k)
            local = local + 0.5 * (2 * a * b + HAARPSI_C) / (a**2 + b**2 + HAARPSI_C)
        weight = np.maximum(coefficient(f1, 3, k), coefficient(f2, 3, k))
        numerator += float((weight / (1 + np.exp(-HAARPSI_ALPHA * local))).sum())
        denominator += float(weight.sum())
    pooled = numerator / denominator
    return float((np.log(pooled / (1 - pooled)) / HAARPSI_ALPHA) ** 2)


def test_identical_volumes_score_perfectly_with_capped_psnr():
    truth, mask = textured_truth()

    scores = full_reference_scores(truth, truth, mask)

    assert scores["haarpsi"] == pytest.approx(1.0, abs=1e-9)
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert scores["psnr"] == PSNR_CAP_DB
    assert set(scores) == set(FULL_REFERENCE_BETTER) == set(KEYS)


def test_a_global_scale_is_fitted_away():
    truth, mask = textured_truth()
    noisy = truth + 0.05 * np.random.default_rng(1).standard_normal(truth.shape)

    plain = full_reference_scores(noisy, truth, mask)
    scaled = full_reference_scores(noisy * 3.7, truth, mask)

    assert plain["haarpsi"] < 0.99
    for key in KEYS:
        assert scaled[key] == pytest.approx(plain[key], rel=1e-9)


def test_scores_fall_monotonically_as_noise_grows():
    truth, mask = textured_truth()
    noise = np.random.default_rng(2).standard_normal(truth.shape)

    runs = [full_reference_scores(truth + s * noise, truth, mask) for s in (0.01, 0.03, 0.1, 0.3)]

    for key in KEYS:
        values = [run[key] for run in runs]
        assert all(a > b for a, b in itertools.pairwise(values)), (key, values)


def test_scores_fall_monotonically_as_blur_grows():
    truth, mask = textured_truth()

    runs = [
        full_reference_scores(ndimage.gaussian_filter(truth, (s, s, 0)), truth, mask)
        for s in (0.5, 1.0, 2.0, 4.0)
    ]

    for key in KEYS:
        values = [run[key] for run in runs]
        assert all(a > b for a, b in itertools.pairwise(values)), (key, values)


def test_an_offset_inside_the_mask_or_an_unrelated_image_scores_well_below_one():
    truth, mask = textured_truth()
    unrelated = np.abs(np.random.default_rng(3).standard_normal(truth.shape))

    shifted = full_reference_scores(truth + float(truth.max()), truth, mask)
    random = full_reference_scores(unrelated, truth, mask)

    assert shifted["haarpsi"] < 0.85
    assert random["haarpsi"] < 0.5
    assert random["ssim"] < 0.3


def test_haarpsi_of_unrelated_noise_is_far_below_one_and_symmetric():
    reference = textured_truth()[0][:, :, 3]
    noise = np.random.default_rng(4).uniform(0.0, float(reference.max()), reference.shape)

    forward = haarpsi(noise, reference, float(reference.max()))
    backward = haarpsi(reference, noise, float(reference.max()))

    assert forward < 0.3
    assert forward == pytest.approx(backward, rel=1e-12)


def test_haarpsi_ignores_a_uniform_offset_of_the_whole_image():
    reference = textured_truth()[0][:, :, 3]

    score = haarpsi(reference + 0.5, reference, float(reference.max()))

    assert score == pytest.approx(1.0, abs=1e-9)


def test_haarpsi_depends_on_intensities_only_relative_to_the_data_range():
    reference = textured_truth()[0][:, :, 3].astype(np.float64)
    image = ndimage.gaussian_filter(reference, 1.0)

    base = haarpsi(image, reference, 1.3)
    rescaled = haarpsi(image * 250.0, reference * 250.0, 1.3 * 250.0)
    wider_range = haarpsi(image, reference, 13.0)

    assert rescaled == pytest.approx(base, rel=1e-9)
    assert wider_range > base  # differences shrink relative to the fixed constant C


@pytest.mark.parametrize("shape", [(91, 109), (109, 91), (MIN_SIDE, MIN_SIDE), (17, 33), (64, 64)])
def test_haarpsi_matches_the_direct_formula_on_even_and_odd_shapes(shape):
    rng = np.random.default_rng(5)
    reference = ndimage.gaussian_filter(rng.uniform(0.0, 1.0, shape), 1.0)
    image = reference + 0.05 * rng.standard_normal(shape)

    identical = haarpsi(reference, reference, 1.0)
    score = haarpsi(image, reference, 1.0)

    assert identical == pytest.approx(1.0, abs=1e-9)
    assert 0.0 < score < 1.0
    assert score == pytest.approx(direct_haarpsi(image, reference, 1.0), rel=1e-9)


def test_voxels_outside_the_mask_change_nothing():
    truth, mask = textured_truth()
    rng = np.random.default_rng(6)
    image = truth + 0.05 * rng.standard_normal(truth.shape)
    garbage = 10.0 * rng.standard_normal(truth.shape)

    clean = full_reference_scores(image, truth, mask)
    dirty = full_reference_scores(
        np.where(mask, image, garbage), np.where(mask, truth, -garbage), mask
    )

    for key in KEYS:
        assert dirty[key] == pytest.approx(clean[key], rel=1e-12)


def test_only_slices_with_at_least_five_percent_mask_are_scored():
    truth, mask = textured_truth()
    image = truth + 0.05 * np.random.default_rng(7).standard_normal(truth.shape)
    base = full_reference_scores(image, truth, mask)

    def with_empty_slice(fraction: float) -> dict[str, float]:
        # Prepare an extra slice that is zero in both images: it leaves the scale fit
        # and data range alone, but would score perfectly if it were counted.
        extra = np.zeros(mask.shape[:2], dtype=bool)
        extra.flat[: int(fraction * extra.size)] = True
        return full_reference_scores(
            np.dstack([image, np.zeros(mask.shape[:2])]),
            np.dstack([truth, np.zeros(mask.shape[:2])]),
            np.dstack([mask, extra]),
        )

    below, above = with_empty_slice(0.04), with_empty_slice(0.06)

    for key in KEYS:
        assert below[key] == pytest.approx(base[key], rel=1e-12)
        assert above[key] > base[key]


@pytest.mark.parametrize(
    ("image_shape", "truth_shape", "mask_shape"),
    [((91, 109, 6), (91, 109, 5), (91, 109, 6)), ((91, 109, 6), (91, 109, 6), (90, 109, 6))],
)
def test_shape_mismatch_raises_a_one_line_input_error(image_shape, truth_shape, mask_shape):
    image, truth, mask = np.ones(image_shape), np.ones(truth_shape), np.ones(mask_shape, bool)

    with pytest.raises(InputError) as caught:
        full_reference_scores(image, truth, mask)

    message = str(caught.value)
    assert "\n" not in message
    assert str(image_shape) in message and str(mask_shape) in message


def test_bad_2d_inputs_raise_one_line_input_errors():
    small = np.ones((MIN_SIDE - 1, 40))

    with pytest.raises(InputError, match="same|one shape") as mismatch:
        haarpsi(np.ones((20, 20)), np.ones((20, 21)), 1.0)
    with pytest.raises(InputError, match=">= 15") as too_small:
        haarpsi(small, small, 1.0)
    with pytest.raises(InputError, match="data_range"):
        haarpsi(np.ones((20, 20)), np.ones((20, 20)), 0.0)

    assert "\n" not in str(mismatch.value) + str(too_small.value)


def test_unusable_masks_and_truths_raise_input_errors():
    truth, mask = textured_truth()

    with pytest.raises(InputError, match="boolean"):
        full_reference_scores(truth, truth, mask.astype(np.float32))
    with pytest.raises(InputError, match="5%"):
        full_reference_scores(truth, truth, np.zeros_like(mask))
    with pytest.raises(InputError, match="maximum"):
        full_reference_scores(truth, np.zeros_like(truth), mask)
    with pytest.raises(InputError, match="NaN"):
        full_reference_scores(np.where(mask, np.nan, truth), truth, mask)
