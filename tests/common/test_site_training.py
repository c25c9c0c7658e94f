"""A site's per-round slice share: seeded, fresh every round, never empty."""

import pytest
import torch

from common.site_training import round_share
from common.slices import SliceSet


def _slices(count: int) -> SliceSet:
    targets = torch.arange(count, dtype=torch.float32)[:, None, None].expand(count, 4, 4)
    masks = torch.ones(count, 4, 4, dtype=torch.bool)
    return SliceSet(
        targets=targets.clone(), masks=masks, detail=torch.zeros(count, dtype=torch.bool)
    )


def _ids(slices: SliceSet) -> list[int]:
    return slices.targets[:, 0, 0].long().tolist()


def test_a_share_draws_that_many_distinct_slices_with_their_masks_and_flags():
    chosen = round_share(_slices(40), 0.25, key=(3, 2), seed=0)

    assert len(chosen) == 10
    assert len(set(_ids(chosen))) == 10
    assert chosen.masks.shape == (10, 4, 4) and chosen.detail.shape == (10,)


def test_the_same_key_replays_and_another_round_draws_afresh():
    slices = _slices(40)

    first = _ids(round_share(slices, 0.25, key=(3, 2), seed=0))

    assert first == _ids(round_share(slices, 0.25, key=(3, 2), seed=0))
    assert first != _ids(round_share(slices, 0.25, key=(3, 3), seed=0))
    assert first != _ids(round_share(slices, 0.25, key=(3, 2), seed=1))


def test_over_many_rounds_every_slice_is_taught():
    slices = _slices(20)

    seen = {i for r in range(1, 30) for i in _ids(round_share(slices, 0.25, (1, r), 0))}

    assert seen == set(range(20))


@pytest.mark.parametrize(("share", "count", "expected"), [(1.0, 7, 7), (0.01, 7, 1), (0.5, 7, 4)])
def test_a_full_share_keeps_everything_and_a_tiny_one_keeps_one(share, count, expected):
    slices = _slices(count)

    chosen = round_share(slices, share, key=(0, 1), seed=0)

    assert len(chosen) == expected
    if share == 1.0:
        assert chosen is slices


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.25"])
def test_a_share_outside_zero_to_one_is_refused_with_the_field_named(bad):
    from common.configs.settings import parse_settings
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="non_reference_share"):
        parse_settings(f"[training]\nnon_reference_share = {bad}\n", "run.toml")
