"""Axial target slices for training, and the neighbours a 2.5D model sees beside them.

A 2D network sees one slice and cannot undo blur across slices. With
``[model] in_channels`` > 1 it sees a stack: the slice (the *centre*) and its
neighbours from the same volume, edge-replicated at the volume's ends. A
:class:`SliceSet` therefore stores, besides the slices trained on, the
slices that are only neighbours, and a table of each stored slice's
neighbours. Stacks are always gathered from the set's current ``targets``, so
when pseudo-targets replace them, the neighbours are pseudo-targets too.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from common.errors import HarmonizationError
from common.mask import slice_foreground_fraction


@dataclass(frozen=True)
class SliceSet:
    """Axial target slices and their foreground masks, padded to one size.

    ``targets`` is float32 (M, H, W) in profile units; ``masks`` is bool (M, H, W).
    ``detail`` is bool (M,): True where the slice comes from a reference site and
    may teach fine texture (noise level, sharpness); None means every slice may.
    ``neighbours`` is int64 (M, 2R + 1): the rows of each slice's neighbours
    ``-R..R`` in its volume, edge-replicated (None: R = 0, no stacks).
    ``centres`` is int64 (N,): the rows trained and evaluated on, the rest are
    only neighbours (None: every row). ``len`` counts the centres, and every
    ``index`` below is a position among them.
    """

    targets: torch.Tensor
    masks: torch.Tensor
    detail: torch.Tensor | None = None
    neighbours: torch.Tensor | None = None
    centres: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0] if self.centres is None else self.centres.shape[0])

    @property
    def radius(self) -> int:
        """How many neighbours each side a stack can have."""
        return 0 if self.neighbours is None else (self.neighbours.shape[1] - 1) // 2

    def centre_rows(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Stored rows of the centres ``index`` (None: of every centre)."""
        if index is None:
            every = torch.arange(self.targets.shape[0])
            return every if self.centres is None else self.centres
        return index if self.centres is None else self.centres[index]

    def stacks(self, index: torch.Tensor, width: int) -> torch.Tensor:
        """Targets of the centres ``index`` and their neighbours: (B, width, H, W).

        The centre is channel ``width // 2``; ``width`` is odd, at most 2R + 1.
        """
        rows = self.centre_rows(index)
        if width == 1:
            return self.targets[rows][:, None]
        half, table = width // 2, self.neighbours
        if table is None or width % 2 == 0 or half > self.radius:
            raise HarmonizationError(
                f"a stack of {width} slices needs an odd width and {half} neighbours "
                f"each side; the slices hold {self.radius} (collect them with more context)"
            )
        columns = table[rows][:, self.radius - half : self.radius + half + 1]
        return self.targets[columns]

    def around(self, rows: torch.Tensor, reach: int | None = None) -> torch.Tensor:
        """The sorted rows that stacks of ``rows`` read (``rows`` themselves without stacks).

        ``reach``: neighbours each side that the stacks read (None: all that are held).
        """
        if self.neighbours is None:
            return rows
        half = self.radius if reach is None else min(reach, self.radius)
        return torch.unique(self.neighbours[rows][:, self.radius - half : self.radius + half + 1])


def neighbour_table(stored: np.ndarray, depth: int, radius: int) -> np.ndarray:
    """Positions in ``stored`` of each stored slice's neighbours ``-radius..radius``: (n, 2r+1).

    ``stored`` are sorted slice numbers of one volume of ``depth`` slices.
    Neighbours are clipped to the volume (edge replication); a neighbour that
    is not stored is replaced by the stored end of its slice's run, which only
    stacks of slices that are neighbours themselves can meet.
    """
    count = stored.size
    position = np.arange(count)
    breaks = np.flatnonzero(np.diff(stored) != 1) + 1
    run = np.zeros(count, dtype=np.int64)
    run[breaks] = 1
    run = np.cumsum(run)
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [count]]) - 1
    offsets = np.arange(-radius, radius + 1)
    wanted = np.clip(stored[:, None] + offsets[None, :], 0, depth - 1)
    moved = position[:, None] + (wanted - stored[:, None])
    return np.clip(moved, starts[run][:, None], stops[run][:, None])


def collect_slices(
    volumes: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    min_foreground: float,
    detail: Sequence[bool] | None = None,
    context: int = 0,
) -> SliceSet:
    """Axial slices whose foreground share is at least ``min_foreground`` of the largest.

    ``detail`` gives one flag per volume (see :class:`SliceSet`); None: all True.
    ``context`` > 0 also keeps that many neighbours each side of every kept
    slice (stacks for a 2.5D model); slices below the threshold are then
    stored as neighbours only, never as centres. With 0 nothing beyond the
    kept slices is stored.
    """
    if not volumes:
        raise HarmonizationError("no target volumes to train on")
    height = max(v.shape[0] for v in volumes)
    width = max(v.shape[1] for v in volumes)
    flags = [True] * len(volumes) if detail is None else list(detail)
    targets, slice_masks, slice_detail, tables, centres = [], [], [], [], []
    stored_so_far = 0
    for volume, mask, flag in zip(volumes, masks, flags, strict=True):
        fraction = slice_foreground_fraction(mask)
        keep = np.flatnonzero(fraction >= min_foreground * fraction.max())
        stored = keep
        if context > 0:
            near = np.clip(keep[:, None] + np.arange(-context, context + 1), 0, volume.shape[2] - 1)
            stored = np.unique(near)
            tables.append(stored_so_far + neighbour_table(stored, volume.shape[2], context))
            centres.append(stored_so_far + np.searchsorted(stored, keep))
        pad = ((0, height - volume.shape[0]), (0, width - volume.shape[1]), (0, 0))
        targets.append(np.pad(volume, pad)[:, :, stored].transpose(2, 0, 1))
        slice_masks.append(np.pad(mask, pad)[:, :, stored].transpose(2, 0, 1))
        slice_detail.append(np.full(len(stored), flag))
        stored_so_far += len(stored)
    return SliceSet(
        targets=torch.from_numpy(np.concatenate(targets).astype(np.float32)),
        masks=torch.from_numpy(np.concatenate(slice_masks).astype(bool)),
        detail=None if detail is None else torch.from_numpy(np.concatenate(slice_detail)),
        neighbours=torch.from_numpy(np.concatenate(tables)) if context > 0 else None,
        centres=torch.from_numpy(np.concatenate(centres)) if context > 0 else None,
    )
