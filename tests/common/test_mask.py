"""Automatic foreground masks on stripped and whole-head volumes."""

import numpy as np
import pytest

from common.errors import InputError
from common.mask import foreground_mask, slice_foreground_fraction
from tests.conftest import synthetic_head


def test_mask_covers_the_head_including_dark_csf_and_not_the_background():
    head = synthetic_head(shape=(40, 48, 32), noise=0.0)
    rng = np.random.default_rng(1)
    noisy = np.abs(
        head + 0.03 * rng.standard_normal(head.shape) + 0.03j * rng.standard_normal(head.shape)
    )

    mask = foreground_mask(noisy)

    truth = head > 0
    inside = (mask & truth).sum() / truth.sum()
    outside = (mask & ~truth).sum() / (~truth).sum()
    assert inside > 0.95
    assert outside < 0.05


def test_mask_fills_dark_ventricles():
    head = synthetic_head(shape=(40, 48, 32), noise=0.0)
    head[17:23, 20:28, 13:19] = 0.25  # a dark 'ventricle' in the WM

    mask = foreground_mask(head)

    assert mask[17:23, 20:28, 13:19].all()


def test_mask_on_skull_stripped_zero_background():
    head = synthetic_head(shape=(40, 48, 32), noise=0.0)

    mask = foreground_mask(head)

    np.testing.assert_array_equal(mask[head == 0].mean() < 0.05, True)
    assert mask[head > 0].mean() > 0.95


def test_empty_volume_is_refused():
    with pytest.raises(InputError, match="no foreground"):
        foreground_mask(np.zeros((20, 20, 20), dtype=np.float32))


def test_slice_fraction_counts_axial_slices():
    mask = np.zeros((4, 5, 3), dtype=bool)
    mask[:, :, 1] = True
    mask[:2, :, 2] = True

    np.testing.assert_allclose(slice_foreground_fraction(mask), [0.0, 1.0, 0.5])
