"""N4 bias correction: removes smooth shading, keeps the mean, deterministic, clear refusals."""

import numpy as np
import pytest

from common.bias_correction import apply_bias_correction, correct_bias_field, shrink_for
from common.errors import HarmonizationError

SHAPE = (40, 48, 40)
SPACING = (2.0, 2.0, 2.0)


def shaded_phantom(seed: int) -> dict[str, np.ndarray]:
    """Piecewise-constant head (GM 60, WM 100, CSF 25) times a smooth coil-like field."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1.0, 1.0, n) for n in SHAPE]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt(x**2 + y**2 + z**2)
    head, white = radius < 0.85, (radius < 0.5) & (radius >= 0.15)
    clean = np.where(radius < 0.5, 100.0, 60.0) * head
    clean[radius < 0.15] = 25.0
    clean = np.abs(clean + rng.normal(0.0, 2.0, SHAPE))
    field = np.exp(0.35 * x + 0.2 * y - 0.15 * z + 0.1 * x * y)
    return {"shaded": (clean * field).astype(np.float32), "head": head, "white": white}


def coefficient_of_variation(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


@pytest.fixture(scope="module")
def phantom() -> dict[str, np.ndarray]:
    return shaded_phantom(0)


def test_n4_removes_smooth_bias_and_keeps_mean(phantom):
    shaded, head, white = phantom["shaded"], phantom["head"], phantom["white"]

    corrected = correct_bias_field(shaded, head, SPACING)

    before = coefficient_of_variation(shaded[white])
    after = coefficient_of_variation(corrected[white])
    assert after < 0.5 * before
    np.testing.assert_allclose(corrected[head].mean(), shaded[head].mean(), rtol=1e-5)
    assert corrected.dtype == np.float32 and corrected.shape == SHAPE


def test_n4_is_deterministic_and_leaves_global_rng_alone(phantom):
    state = np.random.get_state()[1].copy()

    first = correct_bias_field(phantom["shaded"], phantom["head"], SPACING, shrink_factor=3)
    second = correct_bias_field(phantom["shaded"], phantom["head"], SPACING, shrink_factor=3)

    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_n4_refuses_tiny_mask_in_one_line(phantom):
    tiny = np.zeros(SHAPE, dtype=bool)
    tiny[18:22, 20:24, 18:22] = True

    with pytest.raises(HarmonizationError) as caught:
        correct_bias_field(phantom["shaded"], tiny, SPACING)

    assert "64 voxels" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"spacing": (2.0, 0.0, 2.0)}, "spacing"),
        ({"shrink_factor": 0}, "shrink_factor"),
        ({"iterations": ()}, "iterations"),
        ({"mask": np.ones((4, 4, 4), dtype=bool)}, "same shape"),
    ],
)
def test_n4_rejects_bad_arguments(phantom, kwargs, fragment):
    arguments = {"volume": phantom["shaded"], "mask": phantom["head"], "spacing": SPACING}
    arguments.update(kwargs)

    with pytest.raises(HarmonizationError, match=fragment):
        correct_bias_field(**arguments)


def test_apply_bias_correction_none_returns_unchanged_copy(phantom):
    shaded = phantom["shaded"]

    result = apply_bias_correction(shaded.astype(np.float64), phantom["head"], SPACING, "none")

    np.testing.assert_array_equal(result, shaded)
    assert result.dtype == np.float32


@pytest.mark.parametrize(
    ("spacing", "shrink"),
    [((1.0, 1.0, 1.0), 4), ((2.0, 2.0, 2.0), 2), ((0.5, 0.5, 1.2), 8), ((3.0, 3.0, 3.0), 1)],
)
def test_the_field_is_fitted_on_a_grid_of_about_4_mm(spacing, shrink):
    assert shrink_for(spacing) == shrink
