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
    from common.training import SliceSet

    slices = SliceSet(targets=torch.rand(12, 4, 4), masks=torch.ones(12, 4, 4, dtype=torch.bool))
    settings = HarmonizerSettings().with_overrides("training", non_reference_share=0.25)

    assert len(round_slices(slices, settings, reference=True, key=(1, 2))) == 12
    assert len(round_slices(slices, settings, reference=False, key=(1, 2))) == 3
    everything = settings.with_overrides("training", non_reference_share=1.0)
    assert len(round_slices(slices, everything, reference=False, key=(1, 2))) == 12
