"""Metrics on constructed cases with known answers."""

import numpy as np
import pytest
from scipy import ndimage

from common.errors import InputError
from common.metrics import (
    cross_site_cv,
    gradient_correlation,
    high_pass_noise,
    jensen_shannon,
    mean_pairwise_jsd,
    normalized_histogram,
    scale_fitted_nmae,
    scale_free_tissue_means,
    site_classifier_accuracy,
    slice_jitter,
)
from tests.conftest import synthetic_head


def test_identical_sites_have_zero_cv_and_a_spread_site_does_not():
    assert cross_site_cv([0.8, 0.8, 0.8]) < 1e-12
    assert abs(cross_site_cv([0.9, 1.0, 1.1]) - np.std([0.9, 1.0, 1.1])) < 1e-12


def test_global_scale_gives_zero_error_and_unchanged_tissue_means():
    truth = synthetic_head(noise=0.0) + 0.01
    brain = truth > 0.2
    masks = {"wm": truth > 0.9, "gm": (truth > 0.5) & (truth < 0.9)}

    assert scale_fitted_nmae(truth * 37.0, truth, brain) < 1e-6
    a = scale_free_tissue_means(truth, brain, masks)
    b = scale_free_tissue_means(truth * 37.0, brain, masks)
    assert all(abs(a[k] - b[k]) < 1e-6 for k in masks)


def test_noise_lowers_gradient_correlation_and_raises_error():
    truth = synthetic_head(noise=0.0)
    brain = truth > 0.2
    noisy = truth + 0.2 * np.random.default_rng(0).standard_normal(truth.shape)

    assert gradient_correlation(truth, truth, brain) > 0.999
    assert gradient_correlation(noisy, truth, brain) < 0.9
    assert scale_fitted_nmae(noisy, truth, brain) > 0.1


def test_identical_sites_have_zero_jsd_and_distinct_ones_do_not():
    truth = synthetic_head(noise=0.01) + 0.05
    brain = truth > 0.2
    same = [normalized_histogram(truth, brain) for _ in range(3)]
    other = normalized_histogram(truth**2, brain)

    assert mean_pairwise_jsd(same) < 1e-12
    assert mean_pairwise_jsd([same[0], other]) > 0.05
    assert abs(jensen_shannon(same[0], other) - jensen_shannon(other, same[0])) < 1e-12


def test_site_classifier_is_at_chance_on_identical_images_and_perfect_on_distinct_sites():
    subjects = [f"sub-{s}" for s in range(4) for _ in range(3)]
    sites = [f"site-{k}" for _ in range(4) for k in range(3)]
    heads = {s: synthetic_head(seed=s, noise=0.02) + 0.05 for s in range(4)}
    brains = {s: heads[s] > 0.2 for s in heads}
    identical = np.array(
        [normalized_histogram(heads[s], brains[s]) for s in range(4) for _ in range(3)]
    )
    distinct = np.array(
        [
            normalized_histogram(heads[s] ** (1 + 2 * k), brains[s])
            for s in range(4)
            for k in range(3)
        ]
    )

    assert site_classifier_accuracy(identical, sites, subjects) <= 1 / 3 + 1e-9
    assert site_classifier_accuracy(distinct, sites, subjects) == 1.0


SHAPE = (40, 48, 32)


def head_and_wm(noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    truth = synthetic_head(SHAPE, noise=noise) + 0.01
    return truth, truth > 0.9


def test_alternate_slice_gain_gives_jitter_of_its_log():
    truth, wm = head_and_wm()
    gain = np.where(np.arange(SHAPE[2]) % 2 == 1, 1.02, 1.0)

    jitter = slice_jitter(truth * gain, truth, wm)

    assert jitter == pytest.approx(np.log(1.02), rel=0.01)
    assert slice_jitter(truth, truth, wm) < 1e-9


def test_global_scale_and_smooth_bias_give_almost_no_jitter():
    truth, wm = head_and_wm()
    x, _, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    ramp = 1.0 + 0.15 * z  # 30 % from bottom to top
    field = np.exp(0.2 * x + 0.1 * z**2)  # a curved bias: 20 % across, 10 % along z

    scaled = slice_jitter(truth * 37.0, truth, wm)
    ramped = slice_jitter(truth * ramp, truth, wm)
    biased = slice_jitter(truth * field, truth, wm)

    assert scaled < 1e-6
    assert ramped < 0.1 * np.log(1.02)
    assert biased < 0.25 * np.log(1.02)


def test_jitter_refuses_a_mask_with_too_few_slices():
    truth, wm = head_and_wm()
    thin = np.zeros_like(wm)
    thin[:, :, 15:17] = wm[:, :, 15:17]

    with pytest.raises(InputError, match="at least 2"):
        slice_jitter(truth, truth, thin)


def test_noise_proxy_ignores_edges_and_grows_with_noise():
    clean, wm = head_and_wm(noise=0.0)
    brain = clean > 0.2
    rng = np.random.default_rng(0)
    speckle = rng.standard_normal(SHAPE)

    flat = high_pass_noise(clean, wm, brain)
    low = high_pass_noise(clean + 0.02 * speckle, wm, brain)
    high = high_pass_noise(clean + 0.04 * speckle, wm, brain)

    assert flat < 1e-6  # a piecewise-constant head has no noise, whatever its edges
    assert high / low == pytest.approx(2.0, rel=0.1)


def test_noise_proxy_drops_with_smoothed_noise_and_ignores_scale():
    clean, wm = head_and_wm(noise=0.0)
    brain = clean > 0.2
    speckle = np.random.default_rng(1).standard_normal(SHAPE)
    noisy = clean + 0.03 * speckle

    raw = high_pass_noise(noisy, wm, brain)
    smoothed = high_pass_noise(clean + 0.03 * ndimage.gaussian_filter(speckle, 1.0), wm, brain)
    rescaled = high_pass_noise(noisy * 37.0 + 5.0, wm, brain)

    assert smoothed < 0.5 * raw
    assert rescaled == pytest.approx(raw, rel=1e-6)
