"""Smooth random fields, the common ingredient of bias fields and elastic deformations.

White Gaussian noise on a coarse grid of nodes is interpolated to the voxel grid
with Gaussian radial weights, one axis at a time (a separable tensor product), so
a field costs a few small matrix products instead of a 3D filter over the volume.
"""

import numpy as np


def _axis_weights(size: int, spacing_mm: float, correlation_mm: float) -> np.ndarray:
    """(size, nodes) weights from coarse nodes to voxel centres along one axis."""
    extent = size * spacing_mm
    nodes = int(np.ceil(extent / correlation_mm)) + 3
    node_positions = (np.arange(nodes) - 1.0) * correlation_mm
    voxel_positions = (np.arange(size) + 0.5) * spacing_mm
    distance = (voxel_positions[:, None] - node_positions[None, :]) / correlation_mm
    weights = np.exp(-2.0 * distance**2)
    return weights / weights.sum(axis=1, keepdims=True)


def smooth_random_field(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    correlation_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A zero-mean, unit-variance smooth field of ``shape`` (float32).

    Node values are i.i.d. standard normal; ``correlation_mm`` is the node spacing,
    so structures are about that size. The result is standardized over the volume.
    """
    matrices = [
        _axis_weights(size, spacing, correlation_mm)
        for size, spacing in zip(shape, spacing_mm, strict=True)
    ]
    field = rng.standard_normal(tuple(m.shape[1] for m in matrices))
    for axis, matrix in enumerate(matrices):
        field = np.moveaxis(np.tensordot(matrix, np.moveaxis(field, axis, 0), axes=1), 0, axis)
    field = field - field.mean()
    return (field / max(float(field.std()), 1e-12)).astype(np.float32)
