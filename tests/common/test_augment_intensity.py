"""Image-domain alterations: monotone contrast curves, smooth shading, gain and offset."""

import torch

from common.augment import intensity


def _ramp(batch: int, steps: int = 400, top: float = 2.0) -> torch.Tensor:
    return torch.linspace(0, top, steps).expand(batch, 1, steps).contiguous()


def test_sampled_curves_are_monotone_through_zero_and_keep_the_foreground_level():
    on = torch.ones(64, dtype=torch.bool)
    window, slopes = intensity.sample_intensity_curve(1.0, on, torch.Generator().manual_seed(0))
    ramp = _ramp(64)

    curved = intensity.apply_intensity_curve(ramp, window, slopes, torch.ones(64))

    assert (curved.diff(dim=-1) > 0).all()
    assert (curved[..., 0] == 0).all()
    at_one = intensity.apply_intensity_curve(torch.ones(64, 1, 1), window, slopes, torch.ones(64))
    torch.testing.assert_close(at_one, torch.ones(64, 1, 1))


def test_curves_change_contrast_between_tissues():
    on = torch.ones(64, dtype=torch.bool)
    window, slopes = intensity.sample_intensity_curve(1.0, on, torch.Generator().manual_seed(1))
    tissues = torch.tensor([0.25, 0.65, 1.0]).expand(64, 1, 3).contiguous()  # CSF, GM, WM

    curved = intensity.apply_intensity_curve(tissues, window, slopes, torch.ones(64))

    ratio = curved[:, 0, 1] / curved[:, 0, 2]  # GM / WM
    assert ratio.max() - ratio.min() > 0.2


def test_curve_continues_linearly_beyond_its_window():
    window = torch.tensor([[0.3, 0.9]])
    slopes = torch.tensor([[0.8, 1.5]])
    ramp = torch.linspace(1.0, 3.0, 50).reshape(1, 1, 50)

    curved = intensity.apply_intensity_curve(ramp, window, slopes, torch.ones(1))

    torch.testing.assert_close(
        curved.diff(dim=-1).diff(dim=-1), torch.zeros(1, 1, 48), atol=1e-5, rtol=0
    )


def test_neutral_curve_and_gain_are_exactly_the_identity():
    images = torch.rand(3, 9, 11) * 1.3

    out = intensity.apply_intensity_curve(
        images, torch.zeros(3, 2), torch.ones(3, 2), torch.ones(3)
    )

    assert torch.equal(out, images)
    assert out.data_ptr() != images.data_ptr()


def test_gain_alone_is_an_exact_scaling():
    images = torch.rand(2, 8, 8)
    gain = torch.tensor([0.8, 1.25])

    out = intensity.apply_intensity_curve(images, torch.zeros(2, 2), torch.ones(2, 2), gain)

    assert torch.equal(out, images * gain[:, None, None])


def test_offset_alone_is_an_exact_shift():
    images = torch.rand(2, 8, 8)
    offset = torch.tensor([0.0, 0.03])

    out = intensity.apply_bias_offset_(images.clone(), torch.zeros(2, 4, 4), offset)

    assert torch.equal(out, images + offset[:, None, None])


def test_bias_field_is_positive_bounded_and_smooth():
    on = torch.ones(32, dtype=torch.bool)
    coefficients = intensity.sample_bias_field(1.0, on, torch.Generator().manual_seed(2))
    size = 64

    field = intensity.bias_field(coefficients, size, size, torch.device("cpu"))

    amplitude = coefficients.abs().sum(dim=(1, 2))[:, None, None]
    assert (amplitude <= intensity.BIAS_MAX + 1e-6).all()
    assert (field >= 1 - amplitude - 1e-5).all() and (field <= 1 + amplitude + 1e-5).all()
    assert (field > 0).all()
    # a cubic on [-1, 1] has |P'| <= 6: neighbouring pixels differ by at most 6 * a * 2 / size
    steepest = torch.maximum(
        field.diff(dim=1).abs().amax(dim=(1, 2)), field.diff(dim=2).abs().amax(dim=(1, 2))
    )
    assert (steepest <= 12 * amplitude[:, 0, 0] / size + 1e-5).all()
    assert field.std(dim=(1, 2)).min() > 0.01  # visible shading


def test_zero_bias_coefficients_give_a_field_of_exactly_one():
    field = intensity.bias_field(torch.zeros(2, 4, 4), 7, 9, torch.device("cpu"))

    assert torch.equal(field, torch.ones(2, 7, 9))


def test_samplers_keep_their_ranges_and_leave_off_samples_neutral():
    on = torch.tensor([True, False] * 16)
    generator = torch.Generator().manual_seed(4)

    window, slopes = intensity.sample_intensity_curve(0.5, on, generator)
    coefficients = intensity.sample_bias_field(0.5, on, generator)
    gain, offset = intensity.sample_gain_offset(0.5, on, generator)

    assert (slopes[~on] == 1).all() and (coefficients[~on] == 0).all()
    assert (gain[~on] == 1).all() and (offset[~on] == 0).all()
    assert (window[on, 0] < window[on, 1]).all()
    assert (gain[on].log().abs() <= 0.15 + 1e-6).all()  # log gain ~ U(-0.3 s, 0.3 s)
    assert ((offset[on] >= 0) & (offset[on] <= 0.025)).all()


def test_curve_shape_times_the_outer_slope_is_the_curve_and_equal_slopes_are_untouched():
    on = torch.tensor([True, False, True, True])
    window, slopes = intensity.sample_intensity_curve(1.0, on, torch.Generator().manual_seed(5))
    images = torch.rand(4, 6, 7) * 1.3

    shaped = intensity.curve_shape(images, window, slopes)

    curved = intensity.apply_intensity_curve(images, window, slopes, torch.ones(4))
    torch.testing.assert_close(shaped * slopes[:, :1, None], curved, rtol=1e-6, atol=1e-6)
    assert torch.equal(shaped[1], images[1])
    assert shaped.data_ptr() != images.data_ptr()


def test_shade_is_scaled_shading_plus_offset_and_neutral_rows_are_untouched():
    on = torch.tensor([True, True, False])
    coefficients = intensity.sample_bias_field(1.0, on, torch.Generator().manual_seed(6))
    scale, offset = torch.tensor([1.3, 1.0, 1.0]), torch.tensor([0.02, 0.0, 0.0])
    images = torch.rand(3, 8, 9)

    out = intensity.shade(images, coefficients, scale, offset)

    field = intensity.bias_field(coefficients, 8, 9, torch.device("cpu"))
    expected = scale[:, None, None] * images * field + offset[:, None, None]
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(out[2], images[2])
    no_field = intensity.shade(images, torch.zeros(3, 4, 4), scale, offset)
    torch.testing.assert_close(no_field, images * scale[:, None, None] + offset[:, None, None])
    assert torch.equal(no_field[1:], images[1:])
