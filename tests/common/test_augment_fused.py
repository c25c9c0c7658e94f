"""The compiled CPU kernels agree with the torch path they replace, branch by branch."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.augment import apply_alterations, fused, pipeline, sample_alterations
from common.augment.noise import noise_fields, noise_starts, noise_stream
from common.configs.augmentation import AlterationSetting, AugmentationConfig

FEW = settings(max_examples=20, deadline=None)
CPU = torch.device("cpu")


def _config(probability: float, identity: float = 0.0) -> AugmentationConfig:
    """Every alteration at full strength, each switched on with ``probability``."""
    return AugmentationConfig(
        identity_probability=identity,
        **{
            name: AlterationSetting(strength=1.0, probability=probability)
            for name in AugmentationConfig().settings()
        },
    )


def _images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.rand(batch, 1, height // 4 + 1, width // 4 + 1, generator=generator)
    grown = torch.nn.functional.interpolate(smooth, size=(height, width), mode="bilinear")
    return (1.3 * grown[:, 0]).contiguous()


def _both_paths(images, params, monkeypatch):
    monkeypatch.setenv("FEDHARMONIZE_FUSED_AUGMENT", "0")
    reference = apply_alterations(images, params)
    monkeypatch.setenv("FEDHARMONIZE_FUSED_AUGMENT", "1")
    return reference, apply_alterations(images, params)


@FEW
@given(
    seed=st.integers(0, 2**31),
    probability=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    shape=st.tuples(st.integers(1, 6), st.integers(8, 48), st.integers(8, 48)),
)
def test_fused_path_matches_the_torch_path(seed, probability, shape):
    """Any mix of alterations, odd and even sizes: equal to float32 rounding."""
    images = _images(*shape, seed)
    generator = torch.Generator().manual_seed(seed)
    params = sample_alterations(_config(probability), shape[0], shape[1:], generator)
    with pytest.MonkeyPatch.context() as patch:
        reference, result = _both_paths(images, params, patch)
    assert result.shape == reference.shape and result.dtype == torch.float32
    torch.testing.assert_close(result, reference, rtol=1e-5, atol=1e-5)


def test_fused_path_matches_across_blocks(monkeypatch):
    """A batch split into several CPU blocks gives what the torch path gives."""
    monkeypatch.setattr(pipeline, "CPU_BLOCK_PIXELS", 3 * 32 * 32)
    images = _images(10, 32, 32, 5)
    params = sample_alterations(_config(0.6, 0.2), 10, (32, 32), torch.Generator().manual_seed(5))
    reference, result = _both_paths(images, params, monkeypatch)
    torch.testing.assert_close(result, reference, rtol=1e-5, atol=1e-5)


def test_fused_path_leaves_neutral_rows_bitwise_unchanged(monkeypatch):
    monkeypatch.setenv("FEDHARMONIZE_FUSED_AUGMENT", "1")
    images = _images(6, 24, 24, 1)
    params = sample_alterations(_config(1.0, identity=1.0), 6, (24, 24), torch.Generator())
    assert torch.equal(apply_alterations(images, params), images)


def test_the_switch_selects_the_torch_path(monkeypatch):
    def refuse(*args):
        raise AssertionError("a fused kernel ran on the torch path")

    monkeypatch.setenv("FEDHARMONIZE_FUSED_AUGMENT", "0")
    monkeypatch.setattr(fused, "magnitude_shade_into", refuse)
    images = _images(2, 16, 16, 2)
    params = sample_alterations(_config(1.0), 2, (16, 16), torch.Generator().manual_seed(2))
    apply_alterations(images, params)  # runs without the kernels
    monkeypatch.setenv("FEDHARMONIZE_FUSED_AUGMENT", "1")
    with pytest.raises(AssertionError, match="fused kernel"):
        apply_alterations(images, params)


def test_curve_kernel_is_the_clamped_ramp():
    rng = np.random.default_rng(0)
    images = rng.random((3, 5, 7), dtype=np.float32) * 1.5
    shift = np.array([0.2, 0.0, 1.0], np.float32)
    rate = np.array([2.0, 1.0, 3.0], np.float32)
    rise = np.array([0.5, 0.0, -0.3], np.float32)
    out = np.empty_like(images)
    fused.curve_into(images, shift, rate, rise, out)
    ramp = np.clip(images * rate[:, None, None] - shift[:, None, None], 0, 1)
    np.testing.assert_allclose(out, images + rise[:, None, None] * ramp, rtol=1e-6)
    assert np.array_equal(out[1], images[1])  # rise 0: bitwise the input


@pytest.mark.parametrize("use_radial", [True, False])
def test_filter_kernel_is_the_product_of_its_factors(use_radial):
    rng = np.random.default_rng(1)
    count, height, half = 2, 6, 5
    pairs = rng.standard_normal((count, height, 2 * half), dtype=np.float32)
    radial = rng.random((count, 4), dtype=np.float32)
    basis = np.repeat(rng.random((4, height, half), dtype=np.float32), 2, axis=2)
    rows = rng.random((count, height), dtype=np.float32)
    cols = np.repeat(rng.random((count, half), dtype=np.float32), 2, axis=1)
    expected = pairs * rows[:, :, None] * cols[:, None, :]
    if use_radial:
        expected = expected * np.einsum("bk,kyx->byx", radial, basis)
    fused.filter_spectrum(pairs, use_radial, radial, basis, rows, cols)
    np.testing.assert_allclose(pairs, expected, rtol=1e-5)


def test_magnitude_kernel_covers_every_kind_of_row():
    """Rows: not acquired; noise with and without an imaginary image; neither; imaginary only."""
    rng = np.random.default_rng(2)
    count, height, width = 5, 4, 6
    real = rng.standard_normal((count, height, width), dtype=np.float32)
    imag = rng.standard_normal((2, height, width), dtype=np.float32)
    slot = np.array([-1, 0, -1, -1, 1])
    acquired = np.array([False, True, True, True, True])
    sigma = np.array([0.3, 0.2, 0.1, 0.0, 0.0], np.float32)
    offsets = torch.tensor([7, 100, 3000, 5, 9])
    start = noise_starts(offsets, height, width).numpy()
    stream = noise_stream(CPU).numpy()
    row_field = rng.random((count, height, 4), dtype=np.float32)
    col_basis = rng.random((4, width), dtype=np.float32)
    offset = rng.random(count, dtype=np.float32)
    out = np.empty_like(real)
    fused.magnitude_shade_into(
        real, imag, slot, acquired, sigma, stream, start, row_field, col_basis, offset, out
    )
    noise = noise_fields(offsets, height, width, CPU).numpy()
    s = sigma[:, None, None]
    a = real + s * noise[0]
    b = np.zeros_like(real)
    b[1], b[4] = imag[0] + s[1] * noise[1, 1], imag[1]
    magnitude = np.sqrt(a**2 + b**2)
    magnitude[2] = np.sqrt(a[2] ** 2 + s[2] ** 2 * noise[2, 2])
    magnitude[3] = np.abs(real[3])
    magnitude[0] = real[0]
    field = np.einsum("byj,jx->byx", row_field, col_basis)
    np.testing.assert_allclose(out, magnitude * field + offset[:, None, None], rtol=1e-5)


def test_kernels_still_compile_where_the_cache_cannot_be_written(monkeypatch):
    calls = []

    def fake_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return lambda function: function

    monkeypatch.setattr(fused, "njit", fake_njit)
    kernel = fused._compiled(lambda x: x + 1)
    assert kernel(1) == 2
    assert [c.get("cache", False) for c in calls] == [True, False]
