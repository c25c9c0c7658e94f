"""A 2.5D harmonizer (in_channels 3): pseudo-targets, round shares, training, evaluation, apply."""

from pathlib import Path

import numpy as np
import pytest
import torch

from common.artifact import Provenance, load_artifact, save_artifact
from common.augment.stack import context_slices
from common.configs.model import UNetConfig
from common.configs.settings import HarmonizerSettings, parse_settings
from common.configs.training import TrainingConfig
from common.errors import ConfigError, HarmonizationError
from common.harmonize import harmonize_volume
from common.input_mapping import map_slices, map_volume_to_profile, slice_landmarks
from common.model import build_model, parameter_shapes
from common.site_training import evaluate_slices, round_share
from common.slices import SliceSet, collect_slices
from common.training import network_input, pseudo_targets, train_harmonizer
from tests.conftest import synthetic_head, tiny_profile

STACKED = UNetConfig(in_channels=3, base_channels=8, depth=2)
CPU = torch.device("cpu")


class PreviousSlice(torch.nn.Module):
    """A stand-in 3-slice 'model' whose output is its first channel (the slice before) + 10."""

    def __init__(self, shift: float = 10.0) -> None:
        super().__init__()
        self.config = UNetConfig(in_channels=3)
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + self.shift


def _numbered(depth: int, detail: bool, first: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """Slice z holds the constant ``first + z``; everything is foreground."""
    volume = np.broadcast_to(first + np.arange(depth, dtype=np.float32), (4, 4, depth))
    return np.ascontiguousarray(volume), np.ones((4, 4, depth), dtype=bool), detail


def _collect(*volumes: tuple[np.ndarray, np.ndarray, bool], context: int) -> SliceSet:
    images, masks, flags = zip(*volumes, strict=True)
    return collect_slices(list(images), list(masks), 0.05, list(flags), context)


def _values(stacks: torch.Tensor) -> list[list[int]]:
    return stacks[:, :, 0, 0].round().long().tolist()


def _head(context: int) -> SliceSet:
    volume = synthetic_head(shape=(24, 24, 10), seed=3)
    return collect_slices(
        [volume / volume.max()], [volume > 0.05 * volume.max()], 0.05, None, context
    )


def test_pseudo_targets_of_a_stack_model_are_read_as_neighbours_too():
    slices = _collect(_numbered(6, detail=False), _numbered(3, True, 100), context=1)

    once = pseudo_targets(PreviousSlice(), slices, CPU, batch_size=4)
    twice = pseudo_targets(PreviousSlice(), slices, CPU, batch_size=4, passes=2)

    assert _values(once.stacks(torch.arange(6), 3)) == [
        [10, 10, 10],
        [10, 10, 11],
        [10, 11, 12],
        [11, 12, 13],
        [12, 13, 14],
        [13, 14, 14],
    ]
    assert once.targets[6:, 0, 0].tolist() == [100, 101, 102]  # the reference volume's own
    assert twice.targets[:6, 0, 0].tolist() == [20, 20, 20, 21, 22, 23]


def test_a_round_share_of_stacks_chooses_centres_and_keeps_their_neighbours():
    slices = _collect(_numbered(12, detail=False), context=2)

    share = round_share(slices, 0.25, key=(1, 2), seed=0)
    pseudo = pseudo_targets(PreviousSlice(), share, CPU)

    assert len(share) == 3 and share.targets is slices.targets
    centres = share.centre_rows().tolist()
    for stack, centre in zip(_values(share.stacks(torch.arange(3), 5)), centres, strict=True):
        assert stack == [min(max(centre + k, 0), 11) for k in range(-2, 3)]
    for stack, centre in zip(_values(pseudo.stacks(torch.arange(3), 5)), centres, strict=True):
        assert stack == [max(min(centre + k, 11) - 1, 0) + 10 for k in range(-2, 3)]


def test_a_3_slice_model_trains_on_stacks_with_finite_losses_and_replays():
    slices = _head(context_slices(3))
    training = TrainingConfig(epochs=1, batch_size=4, learning_rate=3e-3)
    options = {"percentiles": (1.0, 50.0, 99.0), "device": CPU, "progress": False, "key": (1,)}
    first, second = build_model(STACKED, seed=0), build_model(STACKED, seed=0)
    untrained = build_model(STACKED, seed=0).state_dict()

    result = train_harmonizer(first, slices, training, HarmonizerSettings().augmentation, **options)
    again = train_harmonizer(second, slices, training, HarmonizerSettings().augmentation, **options)

    assert len(result.step_losses) == -(-len(slices) // 4)
    assert np.isfinite(result.step_losses).all()
    assert result.step_losses == again.step_losses
    assert not torch.equal(first.state_dict()["head.weight"], untrained["head.weight"])
    # the neighbours' stem weights start at zero and are learned
    assert untrained["stem.0.weight"][:, [0, 2]].eq(0).all()
    assert first.state_dict()["stem.0.weight"][:, [0, 2]].abs().sum() > 0


def test_a_3_slice_model_refuses_slices_collected_without_neighbours():
    with pytest.raises(HarmonizationError, match=f"context={context_slices(3)}"):
        train_harmonizer(
            build_model(STACKED, seed=0),
            _head(context=0),
            TrainingConfig(epochs=1, batch_size=4),
            HarmonizerSettings().augmentation,
            percentiles=(1.0, 50.0, 99.0),
            device=CPU,
            progress=False,
        )


def test_every_channel_of_a_stack_takes_the_centre_slices_landmark_map():
    altered = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, 8, dtype=torch.bool)
    target = torch.tensor([[0.1, 0.5, 1.0], [0.2, 0.6, 1.1]])

    mapped = network_input(altered, mask, target, (1.0, 50.0, 99.0))

    centre_landmarks = slice_landmarks(altered[:, 1], mask, (1.0, 50.0, 99.0))
    for channel in range(3):
        expected = map_slices(altered[:, channel], centre_landmarks, target)
        assert torch.equal(mapped[:, channel], expected)


def test_an_untrained_3_slice_model_evaluates_exactly_as_the_identity():
    settings = HarmonizerSettings(model=STACKED, training=TrainingConfig(batch_size=4))
    state = build_model(STACKED, seed=0).state_dict()

    metrics = evaluate_slices(state, _head(context_slices(3)), tiny_profile(), settings, device=CPU)

    assert np.isfinite(list(metrics.values())).all()
    assert metrics["loss"] == metrics["identity-loss"]  # zero residual head: the mapped centre


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_an_untrained_model_of_any_width_harmonizes_to_the_mapped_volume(channels: int):
    volume = synthetic_head(shape=(20, 18, 7), seed=1) * 300.0
    mask = volume > 0.05 * volume.max()
    model = build_model(STACKED.model_copy(update={"in_channels": channels}), seed=0)

    untrained = harmonize_volume(model, volume, mask, tiny_profile(), device=CPU, batch_size=3)

    mapped = map_volume_to_profile(volume, mask, tiny_profile())
    assert untrained.shape == volume.shape and untrained.dtype == np.float32
    assert np.array_equal(untrained, np.clip(mapped, 0, None))  # zero residual head: identity


def test_harmonizing_a_volume_stacks_neighbours_from_the_mapped_volume():
    volume = synthetic_head(shape=(20, 18, 7), seed=1) * 300.0
    mask = volume > 0.05 * volume.max()
    mapped = map_volume_to_profile(volume, mask, tiny_profile())

    previous = harmonize_volume(
        PreviousSlice(0.0), volume, mask, tiny_profile(), device=CPU, batch_size=3
    )

    below = [0, 0, 1, 2, 3, 4, 5]  # each slice's predecessor, the first one replicated
    assert np.array_equal(previous, np.clip(mapped[..., below], 0, None))


def test_a_saved_3_slice_model_loads_and_applies(tmp_path: Path):
    provenance = Provenance(mode="local", sites=("site-a",), reference_sites=("site-a",), rounds=0)
    save_artifact(tmp_path / "model", build_model(STACKED, seed=0), tiny_profile(), provenance)
    volume = synthetic_head(shape=(16, 16, 5), seed=2)

    artifact = load_artifact(tmp_path / "model")
    output = harmonize_volume(artifact.model, volume, volume > 0.05, tiny_profile(), device=CPU)

    assert artifact.model.config.in_channels == 3
    assert output.shape == volume.shape and np.isfinite(output).all()


def test_settings_select_the_number_of_input_slices_and_refuse_an_even_one():
    settings = parse_settings("[model]\nin_channels = 3\n", "settings.toml")

    assert settings.model.in_channels == 3
    assert parameter_shapes(settings.model)["stem.0.weight"][1] == 3
    with pytest.raises(ConfigError, match="in_channels=4 must be odd"):
        parse_settings("[model]\nin_channels = 4\n", "settings.toml")


def test_a_sites_cached_slices_hold_the_neighbours_a_3_slice_model_needs(sites_root: Path):
    from common.site_training import site_slices

    settings = HarmonizerSettings(model=STACKED).with_overrides("profile", bias_correction="none")

    slices = site_slices(sites_root / "site-a", settings, tiny_profile(), "training")

    assert slices.radius == context_slices(3)
    assert slices.stacks(torch.arange(len(slices)), 2 * context_slices(3) + 1).shape[1] == 9
