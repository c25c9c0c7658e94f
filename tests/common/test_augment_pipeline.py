"""The augmentation pipeline: identity at zero strength, replay, bounds, config validation."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.augment import AlterationParams, Augmenter, apply_alterations, sample_alterations
from common.configs.augmentation import AlterationSetting, AugmentationConfig
from common.configs.validation import parse_config
from common.errors import ConfigError, InputError

FEW = settings(max_examples=25, deadline=None)
SHAPES = st.tuples(st.integers(1, 4), st.integers(8, 40), st.integers(8, 40))
ALL_ON = AugmentationConfig(
    identity_probability=0.0,
    **{
        name: AlterationSetting(strength=1.0, probability=1.0)
        for name in AugmentationConfig().settings()
    },
)


def _slices(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """Blocky slices in profile units: background 0, tissue levels up to 1.3."""
    generator = torch.Generator().manual_seed(seed)
    batch, height, width = shape
    levels = torch.tensor([0.0, 0.25, 0.65, 1.0, 1.3])
    coarse = torch.randint(
        0, 5, (batch, 1, (height + 3) // 4, (width + 3) // 4), generator=generator
    )
    blocks = torch.nn.functional.interpolate(
        levels[coarse].float(), scale_factor=4.0, mode="nearest"
    )
    return blocks[:, 0, :height, :width].contiguous()


def _is_neutral(params: AlterationParams, row: int) -> bool:
    """Every parameter that acts is at its neutral value (offsets and positions do not act)."""
    neutral = sample_alterations(
        AugmentationConfig.off(), params.batch_size, params.shape, torch.Generator()
    )
    return all(
        torch.equal(getattr(params, name)[row], getattr(neutral, name)[row])
        for name in params.to_dict()
        if name not in {"version", "shape", "noise_offset", "curve_window", "spike_position"}
    )


@FEW
@given(shape=SHAPES, seed=st.integers(0, 2**31), probability=st.floats(0, 1))
def test_zero_strength_is_exactly_the_identity(shape, seed, probability):
    images = _slices(shape, seed)
    config = AugmentationConfig.off().model_copy(update={"identity_probability": probability})

    out, _ = Augmenter(config)(images, torch.Generator().manual_seed(seed))

    assert torch.equal(out, images)
    assert out.data_ptr() != images.data_ptr()


@FEW
@given(shape=SHAPES, seed=st.integers(0, 2**31))
def test_replay_from_a_json_log_gives_the_same_output(shape, seed):
    images = _slices(shape, seed)
    out, params = Augmenter(ALL_ON)(images, torch.Generator().manual_seed(seed))

    logged = json.loads(json.dumps(params.to_dict()))
    replayed = apply_alterations(images, AlterationParams.from_dict(logged))

    assert torch.equal(replayed, out)
    assert AlterationParams.from_dict(logged).to_dict() == params.to_dict()


@FEW
@given(shape=SHAPES, seed=st.integers(0, 2**31))
def test_output_is_real_finite_non_negative_and_bounded(shape, seed):
    images = _slices(shape, seed)
    before = images.clone()

    out, _ = Augmenter(ALL_ON)(images, torch.Generator().manual_seed(seed))

    assert out.shape == images.shape and out.dtype == torch.float32 and not out.is_complex()
    assert torch.isfinite(out).all() and (out >= 0).all()
    assert torch.equal(images, before)
    # linear part <= e^1.4 (curve) * e^0.3 (gain) * e^0.9 (filter) * 1.4 (shading) < 19;
    # noise, spikes and offset add at most about one profile unit per pixel in L2
    norms_in, norms_out = images.flatten(1).norm(dim=1), out.flatten(1).norm(dim=1)
    allowance = math.sqrt(shape[1] * shape[2])
    assert (norms_out <= 19 * norms_in + allowance).all()


def test_identity_samples_in_a_mixed_batch_are_untouched_and_the_others_altered():
    images = _slices((24, 32, 32), seed=1)
    config = AugmentationConfig(identity_probability=0.5)

    out, params = Augmenter(config)(images, torch.Generator().manual_seed(2))

    neutral = [row for row in range(24) if _is_neutral(params, row)]
    altered = [row for row in range(24) if row not in neutral]
    assert 4 <= len(neutral) <= 20
    assert all(torch.equal(out[row], images[row]) for row in neutral)
    assert all((out[row] - images[row]).abs().mean() > 1e-3 for row in altered)


def test_noise_through_the_pipeline_has_the_sampled_sigma_in_the_background():
    only_noise = AugmentationConfig.off().model_copy(
        update={
            "identity_probability": 0.0,
            "noise": AlterationSetting(strength=1.0, probability=1.0),
        }
    )
    images = torch.zeros(4, 96, 96)

    out, params = Augmenter(only_noise)(images, torch.Generator().manual_seed(3))

    expected = params.noise_sigma * math.sqrt(math.pi / 2)
    torch.testing.assert_close(out.mean(dim=(1, 2)), expected, rtol=0.03, atol=0)
    assert ((params.noise_sigma >= 0.025) & (params.noise_sigma <= 0.1)).all()  # SNR 10..40


def test_gain_scales_noise_too_as_if_applied_to_the_magnitude_image():
    images = torch.zeros(1, 96, 96)
    base = sample_alterations(AugmentationConfig.off(), 1, (96, 96), torch.Generator())
    noisy = replace(base, noise_sigma=torch.tensor([0.04]))

    plain = apply_alterations(images, noisy)
    scaled = apply_alterations(images, replace(noisy, gain=torch.tensor([1.5])))

    torch.testing.assert_close(scaled, 1.5 * plain, rtol=1e-5, atol=1e-7)


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rngs_alone():
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    images = _slices((4, 24, 24), seed=4)

    first = Augmenter(AugmentationConfig())(images, torch.Generator().manual_seed(5))
    second = Augmenter(AugmentationConfig())(images, torch.Generator().manual_seed(5))
    other = sample_alterations(AugmentationConfig(), 4, (24, 24), torch.Generator().manual_seed(6))

    assert first[1].to_dict() == second[1].to_dict()
    assert torch.equal(first[0], second[0])
    assert other.to_dict() != first[1].to_dict()
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_a_bad_config_value_raises_a_validation_error_naming_the_field():
    with pytest.raises(ValidationError, match=r"noise\.strength"):
        AugmentationConfig(noise={"strength": 1.5, "probability": 0.5})
    with pytest.raises(ValidationError, match="identity_probability"):
        AugmentationConfig(identity_probability=-0.1)
    with pytest.raises(ValidationError, match="gibbs"):
        AugmentationConfig(gibbs={"strength": 0.5, "probability": 0.5})


def test_config_errors_become_one_line_config_errors_when_parsed():
    with pytest.raises(ConfigError, match=r"augment\.toml: field 'truncation\.probability' = 2"):
        parse_config(
            AugmentationConfig, {"truncation": {"strength": 0.5, "probability": 2}}, "augment.toml"
        )


def test_off_zeroes_every_strength_and_keeps_the_probabilities():
    config = AugmentationConfig.off()

    assert all(setting.strength == 0 for setting in config.settings().values())
    assert config.noise.probability == AugmentationConfig().noise.probability
    with pytest.raises(ValidationError):
        config.noise = AlterationSetting(strength=1.0, probability=1.0)


def test_parameters_from_a_bad_log_are_refused_with_the_field_named():
    params = sample_alterations(AugmentationConfig(), 2, (16, 16), torch.Generator())
    data = params.to_dict()

    with pytest.raises(InputError, match="gain"):
        AlterationParams.from_dict({**data, "gain": [1.0, 1.0, 1.0]})
    with pytest.raises(InputError, match="missing"):
        AlterationParams.from_dict({key: value for key, value in data.items() if key != "offset"})
    with pytest.raises(InputError, match="version"):
        AlterationParams.from_dict({**data, "version": 99})


def test_images_that_do_not_match_the_parameters_are_refused():
    params = sample_alterations(AugmentationConfig(), 2, (16, 16), torch.Generator())

    with pytest.raises(ValueError, match="do not match"):
        apply_alterations(torch.zeros(2, 16, 17), params)
    with pytest.raises(ValueError, match="float32"):
        apply_alterations(torch.zeros(2, 16, 16, dtype=torch.float64), params)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_stays_on_the_device_and_matches_the_cpu():
    images = _slices((4, 32, 32), seed=7)
    params = sample_alterations(ALL_ON, 4, (32, 32), torch.Generator().manual_seed(8))

    on_device = apply_alterations(images.cuda(), params)

    assert on_device.device.type == "cuda"
    torch.testing.assert_close(
        on_device.cpu(), apply_alterations(images, params), atol=1e-4, rtol=1e-4
    )


def test_each_slice_of_a_batch_is_altered_as_if_it_were_alone():
    images = _slices((6, 24, 28), seed=9)
    params = sample_alterations(ALL_ON, 6, (24, 28), torch.Generator().manual_seed(10))
    params = replace(params, partial_fourier_fraction=torch.tensor([1.0, 0.7, 1.0, 0.8, 1.0, 1.0]))

    together = apply_alterations(images, params)

    for row in range(6):
        alone = {name: getattr(params, name)[row : row + 1] for name in AlterationParams._SPEC}
        single = apply_alterations(images[row : row + 1], AlterationParams(shape=(24, 28), **alone))
        torch.testing.assert_close(together[row : row + 1], single, atol=1e-5, rtol=1e-5)


def test_a_batch_applied_in_cpu_blocks_matches_one_pass(monkeypatch):
    from common.augment import pipeline

    images = _slices((7, 24, 28), seed=11)
    before = images.clone()
    config = ALL_ON.model_copy(update={"identity_probability": 0.3})
    params = sample_alterations(config, 7, (24, 28), torch.Generator().manual_seed(12))
    params = replace(params, partial_fourier_fraction=torch.tensor([1, 0.7, 1, 1, 0.8, 1, 1.0]))
    whole = apply_alterations(images, params)

    monkeypatch.setattr(pipeline, "CPU_BLOCK_PIXELS", 2 * 24 * 28)  # blocks of 2, 2, 2, 1 rows
    blocked = apply_alterations(images, params)

    torch.testing.assert_close(blocked, whole, atol=1e-5, rtol=1e-5)
    assert torch.equal(images, before)
    neutral = (
        params.kspace_rows().logical_not()
        & (params.curve_slopes == 1).all(dim=1)
        & (params.bias_coefficients == 0).flatten(1).all(dim=1)
        & (params.gain == 1)
        & (params.offset == 0)
    )
    assert neutral.any() and not neutral.all()
    assert torch.equal(blocked[neutral], images[neutral])
