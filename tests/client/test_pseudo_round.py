"""When a federated site trains on the global model's harmonization of its own cases."""

import pytest

from client.app import pseudo_round
from common.configs.settings import HarmonizerSettings


@pytest.mark.parametrize(
    ("policy", "reference", "server_round", "expected"),
    [
        ("pseudo", False, 2, True),
        ("pseudo", False, 1, False),  # the round-1 global model is untrained
        ("pseudo", True, 3, False),  # reference sites keep their own targets
        ("coarse", False, 3, False),
        ("full", False, 3, False),
    ],
)
def test_only_non_reference_sites_after_round_one_under_the_pseudo_policy(
    policy: str, reference: bool, server_round: int, expected: bool
) -> None:
    settings = HarmonizerSettings().with_overrides("training", non_reference_targets=policy)

    assert pseudo_round(settings, reference, server_round) is expected


def test_only_non_reference_sites_train_on_their_round_share():
    import torch

    from client.app import round_slices
    from common.slices import SliceSet

    slices = SliceSet(targets=torch.rand(12, 4, 4), masks=torch.ones(12, 4, 4, dtype=torch.bool))
    settings = HarmonizerSettings().with_overrides("training", non_reference_share=0.25)

    assert len(round_slices(slices, settings, reference=True, key=(1, 2))) == 12
    assert len(round_slices(slices, settings, reference=False, key=(1, 2))) == 3
    everything = settings.with_overrides("training", non_reference_share=1.0)
    assert len(round_slices(slices, everything, reference=False, key=(1, 2))) == 12


def _spy_on_pseudo_targets(monkeypatch, module) -> list[tuple[int, float]]:
    """Replace ``module.pseudo_targets`` by a stand-in that records ``passes`` and ``denoise``."""
    seen: list[tuple[int, float]] = []

    def spy(model, slices, device, batch_size=32, passes=1, denoise=0.0):
        seen.append((passes, denoise))
        return slices

    monkeypatch.setattr(module, "pseudo_targets", spy)
    return seen


@pytest.mark.parametrize("passes", [1, 3])
def test_a_pseudo_round_makes_its_targets_with_the_configured_passes(monkeypatch, passes):
    from types import SimpleNamespace

    import torch

    import common.site_training as site_training
    import common.training as training_module
    from common.model import build_model
    from common.slices import SliceSet

    seen = _spy_on_pseudo_targets(monkeypatch, training_module)
    settings = HarmonizerSettings().with_overrides(
        "training", pseudo_target_passes=passes, pseudo_target_denoise=0.03, epochs=1, batch_size=4
    )
    slices = SliceSet(targets=torch.rand(4, 16, 16), masks=torch.ones(4, 16, 16, dtype=torch.bool))
    site_training.train_round(
        build_model(settings.model, seed=0).state_dict(),
        slices,
        SimpleNamespace(percentiles=(1.0, 50.0, 99.0)),
        settings,
        device=torch.device("cpu"),
        key=(1, 2),
        pseudo=True,
    )

    assert seen == [(passes, 0.03)]


def test_pooled_training_refreshes_its_pseudo_targets_with_the_configured_passes(monkeypatch):
    import torch

    import common.training as training_module
    from common.model import build_model
    from common.slices import SliceSet

    seen = _spy_on_pseudo_targets(monkeypatch, training_module)
    settings = HarmonizerSettings().with_overrides(
        "training", pseudo_target_passes=3, pseudo_target_denoise=0.0, epochs=2, batch_size=4
    )
    slices = SliceSet(
        targets=torch.rand(4, 16, 16),
        masks=torch.ones(4, 16, 16, dtype=torch.bool),
        detail=torch.tensor([True, True, False, False]),
    )
    training_module.train_harmonizer(
        build_model(settings.model, seed=0),
        slices,
        settings.training,
        settings.augmentation,
        percentiles=(1.0, 50.0, 99.0),
        device=torch.device("cpu"),
        progress=False,
    )

    assert seen == [(3, 0.0)]  # epoch 1 coarse, epoch 2 refreshed


@pytest.mark.parametrize("bad", [0, 5])
def test_pseudo_target_passes_outside_one_to_four_are_refused(bad):
    from common.configs.settings import parse_settings
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="pseudo_target_passes"):
        parse_settings(f"[training]\npseudo_target_passes = {bad}\n", "run.toml")


@pytest.mark.parametrize("bad", [-0.01, 0.6])
def test_a_pseudo_target_denoising_weight_out_of_range_is_refused(bad):
    from common.configs.settings import parse_settings
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="pseudo_target_denoise"):
        parse_settings(f"[training]\npseudo_target_denoise = {bad}\n", "run.toml")


def test_a_round_trains_with_the_denoising_weight_the_server_sent():
    from flwr.app import ConfigRecord

    from client.app import round_settings

    settings = HarmonizerSettings()  # configured: 0.04

    sent = round_settings(settings, ConfigRecord({"server-round": 2, "pseudo-target-denoise": 0.0}))

    assert sent.training.pseudo_target_denoise == 0.0
    assert sent.profile == settings.profile and sent.model == settings.model
    assert round_settings(settings, ConfigRecord({"server-round": 2})) is settings
