"""Network inputs: the landmark map (torch slices agree with numpy volumes) and plain scaling."""

import numpy as np
import pytest
import torch

from common.errors import InputError
from common.input_mapping import (
    map_slices,
    map_volume_to_profile,
    scale_volume_to_profile,
    slice_landmarks,
    volume_input,
)
from common.profile import foreground_landmarks
from common.profile_mapping import apply_knots, landmark_knots
from tests.conftest import synthetic_head, tiny_profile

PERCENTILES = (1.0, 10.0, 50.0, 90.0, 99.0)


def test_slice_mapping_matches_the_numpy_volume_mapping_per_slice():
    head = np.ascontiguousarray(synthetic_head(shape=(30, 36, 24), seed=3)[:, :, 9:15])
    images = torch.from_numpy(np.ascontiguousarray(head.transpose(2, 0, 1)))
    masks = images > 0.2
    target = torch.tensor([[0.1, 0.3, 0.6, 0.9, 1.0]]).repeat(images.shape[0], 1)

    mapped = map_slices(images, slice_landmarks(images, masks, PERCENTILES), target)

    for k in range(images.shape[0]):
        one = head[:, :, k : k + 1]
        source = foreground_landmarks(one, one > 0.2, PERCENTILES)
        xp, fp = landmark_knots(source, target[k].numpy())
        expected = apply_knots(head[:, :, k].astype(np.float64), xp, fp)
        np.testing.assert_allclose(mapped[k].numpy(), expected, atol=2e-3)


def test_a_global_monotone_curve_is_undone():
    volume = synthetic_head(shape=(30, 36, 24), seed=1, noise=0.0)[:, :, 10:14]
    head = torch.from_numpy(np.ascontiguousarray(volume.transpose(2, 0, 1)))
    masks = head > 0.2
    curved = 3.0 * head**0.6  # gain and a contrast change between tissues

    restored = map_slices(
        curved,
        slice_landmarks(curved, masks, PERCENTILES),
        slice_landmarks(head, masks, PERCENTILES),
    )

    error = (restored - head).abs()[masks].mean() / head[masks].mean()
    assert error < 0.02
    assert (curved - head).abs()[masks].mean() / head[masks].mean() > 0.5


def test_volume_mapping_puts_landmarks_on_the_profile():
    head = synthetic_head(seed=2) * 250.0
    mask = head > 50
    profile = tiny_profile(PERCENTILES, (0.1, 0.3, 0.6, 0.9, 1.0))

    mapped = map_volume_to_profile(head, mask, profile)

    np.testing.assert_allclose(
        foreground_landmarks(mapped, mask, PERCENTILES), profile.landmarks, atol=1e-3
    )


def test_scaling_keeps_a_scans_own_contrast_where_the_landmark_map_bends_it():
    head = synthetic_head(seed=4) * 300.0
    mask = head > 50
    own = foreground_landmarks(head, mask, PERCENTILES)
    # the profile's cases differ in anatomy, so their middle percentiles sit higher
    bend = np.array([1.0, 1.1, 1.15, 1.0, 1.0])
    profile = tiny_profile(PERCENTILES, tuple(own / own[-1] * bend))

    scaled = volume_input(head, mask, profile, "scale")
    mapped = volume_input(head, mask, profile, "landmarks")

    ratio = scaled[mask] / head[mask]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # one factor: tissue ratios kept
    assert np.percentile(scaled[mask], 99.0) == pytest.approx(profile.landmarks[-1], rel=1e-4)
    np.testing.assert_array_equal(mapped, map_volume_to_profile(head, mask, profile))
    bent = mapped[mask] / head[mask]
    assert bent.max() / bent.min() > 1.05  # the landmark map moves tissues by different factors


def test_scaling_refuses_a_scan_without_positive_foreground():
    head = -synthetic_head(seed=1)

    with pytest.raises(InputError, match="no positive foreground"):
        scale_volume_to_profile(head, head < -0.2, tiny_profile())
