import numpy as np

from simulations.phantoms.fields import smooth_random_field


def test_field_is_standardized_and_reproducible() -> None:
    shape, spacing = (20, 24, 18), (2.0, 2.0, 2.0)

    first = smooth_random_field(shape, spacing, 30.0, np.random.default_rng(5))
    again = smooth_random_field(shape, spacing, 30.0, np.random.default_rng(5))
    other = smooth_random_field(shape, spacing, 30.0, np.random.default_rng(6))

    assert first.shape == shape and first.dtype == np.float32
    assert abs(float(first.mean())) < 1e-5 and abs(float(first.std()) - 1.0) < 1e-4
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_correlation_length_sets_smoothness() -> None:
    shape, spacing = (40, 40, 40), (2.0, 2.0, 2.0)

    def neighbour_correlation(correlation_mm: float) -> float:
        field = smooth_random_field(shape, spacing, correlation_mm, np.random.default_rng(0))
        return float(np.corrcoef(field[:-1].ravel(), field[1:].ravel())[0, 1])

    smooth, rough = neighbour_correlation(40.0), neighbour_correlation(6.0)

    assert smooth > 0.98
    assert rough < smooth - 0.05
