"""Metrics on constructed cases with known answers."""

import numpy as np

from common.metrics import (
    cross_site_cv,
    gradient_correlation,
    scale_fitted_nmae,
    scale_free_tissue_means,
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
