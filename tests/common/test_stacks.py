"""Stacks of neighbouring slices in a SliceSet: which rows, edge replication, context slices."""

import numpy as np
import pytest
import torch

from common.errors import HarmonizationError
from common.slices import collect_slices, neighbour_table


def _numbered_volume(depth: int, first: int, size: int = 6) -> np.ndarray:
    """Slice z holds the constant ``first + z``, so a stack's values name its slices."""
    volume = np.broadcast_to(first + np.arange(depth, dtype=np.float32), (size, size, depth))
    return np.ascontiguousarray(volume)


def _mask(depth: int, foreground: range, size: int = 6) -> np.ndarray:
    """Foreground on the slices ``foreground`` only."""
    mask = np.zeros((size, size, depth), dtype=bool)
    mask[1:-1, 1:-1, foreground.start : foreground.stop] = True
    return mask


def _values(stacks: torch.Tensor) -> list[list[int]]:
    return stacks[:, :, 0, 0].long().tolist()


def test_stacks_hold_the_neighbours_of_their_own_volume_edge_replicated():
    volumes = [_numbered_volume(10, 0), _numbered_volume(8, 100)]
    masks = [_mask(10, range(0, 10)), _mask(8, range(0, 8))]

    slices = collect_slices(volumes, masks, 0.05, context=2)
    stacks = slices.stacks(torch.tensor([0, 1, 9, 10, 17]), 5)

    assert len(slices) == 18 and slices.radius == 2
    assert _values(stacks) == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
        [7, 8, 9, 9, 9],
        [100, 100, 100, 101, 102],
        [105, 106, 107, 107, 107],
    ]
    assert _values(slices.stacks(torch.tensor([4]), 3)) == [[3, 4, 5]]


def test_slices_below_the_threshold_serve_as_neighbours_but_never_as_centres():
    volume, mask = _numbered_volume(12, 0), _mask(12, range(4, 8))

    slices = collect_slices([volume], [mask], 0.05, context=2)

    assert len(slices) == 4
    assert slices.targets[:, 0, 0].long().tolist() == list(range(2, 10))  # kept 4..7, +-2
    assert _values(slices.stacks(torch.arange(4), 5)) == [
        [2, 3, 4, 5, 6],
        [3, 4, 5, 6, 7],
        [4, 5, 6, 7, 8],
        [5, 6, 7, 8, 9],
    ]


def test_without_context_the_set_is_the_kept_slices_as_before():
    volume, mask = _numbered_volume(12, 0), _mask(12, range(4, 8))

    plain = collect_slices([volume], [mask], 0.05)
    stacked = collect_slices([volume], [mask], 0.05, context=1)

    assert plain.neighbours is None and plain.centres is None
    assert torch.equal(plain.targets, stacked.targets[stacked.centres])
    assert torch.equal(plain.stacks(torch.arange(4), 1)[:, 0], plain.targets)
    with pytest.raises(HarmonizationError, match="hold 0"):
        plain.stacks(torch.arange(2), 3)


def test_a_neighbour_that_is_not_stored_is_replaced_by_the_end_of_its_run():
    stored = np.array([0, 1, 2, 5, 6])

    table = neighbour_table(stored, depth=8, radius=2)

    assert stored[table].tolist() == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 2],
        [0, 1, 2, 2, 2],
        [5, 5, 5, 6, 6],
        [5, 5, 6, 6, 6],
    ]


def test_around_gives_the_rows_a_stack_reads_all_held_or_within_a_reach():
    slices = collect_slices([_numbered_volume(10, 0)], [_mask(10, range(0, 10))], 0.05, context=2)
    row = torch.tensor([5])

    assert slices.around(row).tolist() == [3, 4, 5, 6, 7]
    assert slices.around(row, 1).tolist() == [4, 5, 6]
    assert slices.around(torch.tensor([0]), 1).tolist() == [0, 1]  # edge-replicated
    assert slices.around(row, 9).tolist() == [3, 4, 5, 6, 7]  # no more than is held
