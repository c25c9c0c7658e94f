"""Metrics on constructed cases with known answers."""

import numpy as np

from common.metrics import (
    cross_site_cv,
    gradient_correlation,
    jensen_shannon,
    mean_pairwise_jsd,
    normalized_histogram,
    scale_fitted_nmae,
    scale_free_tissue_means,
    site_classifier_accuracy,
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
