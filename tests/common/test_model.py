"""The U-Net: shapes, residual identity, normalization and seeding."""

import pytest
import torch
from pydantic import ValidationError

from common.configs.model import UNetConfig
from common.model import build_model, count_parameters, parameter_shapes


@pytest.mark.parametrize("size", [(16, 16), (17, 23), (91, 109), (33, 8)])
@pytest.mark.parametrize("depth", [1, 3])
def test_any_input_size_keeps_its_shape(size, depth):
    model = build_model(UNetConfig(depth=depth, base_channels=8), seed=0)

    output = model(torch.rand(2, 1, *size))

    assert output.shape == (2, 1, *size)


def test_untrained_residual_model_is_the_identity():
    model = build_model(UNetConfig(base_channels=8), seed=0)
    x = torch.rand(3, 1, 20, 27)

    torch.testing.assert_close(model(x), x)


def test_two_and_a_half_d_input_uses_the_centre_slice_as_residual():
    model = build_model(UNetConfig(base_channels=8, in_channels=3), seed=0)
    x = torch.rand(2, 3, 24, 24)

    torch.testing.assert_close(model(x), x[:, 1:2])


@pytest.mark.parametrize("channels", [3, 5])
def test_a_fresh_two_and_a_half_d_stem_reads_only_the_centre_slice(channels: int):
    stem = build_model(UNetConfig(in_channels=channels), seed=0).stem
    stacked, flat = stem[0].weight, build_model(UNetConfig(), seed=0).stem[0].weight
    x = torch.rand(2, channels, 24, 24)
    moved = torch.rand(2, channels, 24, 24)
    moved[:, channels // 2] = x[:, channels // 2]  # the same centre, other neighbours

    torch.testing.assert_close(stem(moved), stem(x))
    assert not stacked[:, channels // 2].eq(0).all()
    # the centre's weights spread as a one-slice stem's do (within sampling error)
    assert 0.85 < float(stacked[:, channels // 2].std() / flat.std()) < 1.15


def test_no_batchnorm_running_statistics_anywhere():
    for norm in ("group", "instance"):
        model = build_model(UNetConfig(base_channels=8, norm=norm), seed=0)
        assert not any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
        )
        assert not any("running" in name for name, _ in model.named_buffers())


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()

    a = build_model(UNetConfig(base_channels=8), seed=3)
    b = build_model(UNetConfig(base_channels=8), seed=3)
    c = build_model(UNetConfig(base_channels=8), seed=4)

    assert torch.equal(torch.random.get_rng_state(), state)
    first = next(a.parameters())
    assert torch.equal(first, next(b.parameters()))
    assert not torch.equal(first, next(c.parameters()))


def test_default_size_is_about_half_a_million_parameters():
    assert 300_000 < count_parameters(build_model(UNetConfig(), seed=0)) < 700_000


@pytest.mark.parametrize(
    ("field", "value"), [("in_channels", 2), ("base_channels", 12), ("depth", 0), ("norm", "batch")]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValidationError, match=field if field != "norm" else "norm"):
        UNetConfig(**{field: value})


def test_parameter_shapes_match_the_state_dict_without_touching_global_rng():
    config = UNetConfig(base_channels=8, depth=2)
    state = torch.random.get_rng_state()

    shapes = parameter_shapes(config)

    assert torch.equal(torch.random.get_rng_state(), state)
    expected = {k: tuple(v.shape) for k, v in build_model(config, seed=5).state_dict().items()}
    assert dict(shapes) == expected
    assert parameter_shapes(config) is shapes  # built once per architecture
