"""Cost of one training step with a 2D or 2.5D input, against a bare forward and backward pass.

A training step gathers the batch (a 2.5D model: stacks of neighbouring
slices plus the margin the through-plane blur reads), alters it, landmark-maps
it, and runs the U-Net forward and backward with the optimizer step. The
floor is the bare forward and backward pass of the 2D U-Net on the same
batch size, with no data work; it is timed in the same run, interleaved with
the steps, so that load from other processes hits both alike. Medians after
a warm-up.

    python benchmarks/training_step.py --batch 16 --size 112 --channels 1 3 5

The slices come from a synthetic head-like volume (ellipsoids), so no data
is needed.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from common.augment.stack import context_slices
from common.configs.augmentation import AugmentationConfig
from common.configs.model import UNetConfig
from common.configs.profile import ProfileConfig
from common.configs.training import TrainingConfig
from common.model import build_model
from common.slices import SliceSet, collect_slices
from common.training import train_harmonizer


def head_like_volume(size: int, depth: int) -> np.ndarray:
    """Nested ellipsoids (CSF 0.25, GM 0.65, WM 1.0) in a (size, size, depth) volume."""
    x, y = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    z = np.linspace(-0.8, 0.8, depth)
    radius = np.sqrt(x[..., None] ** 2 + (y[..., None] / 0.9) ** 2 + z**2)
    volume = np.zeros(radius.shape, np.float32)
    for edge, value in ((0.95, 0.25), (0.85, 0.65), (0.6, 1.0)):
        volume[radius < edge] = value
    return volume


def training_slices(size: int, depth: int, context: int) -> SliceSet:
    """Axial slices of one head-like volume, with ``context`` neighbours each side."""
    volume = head_like_volume(size, depth)
    return collect_slices([volume], [volume > 0], min_foreground=0.05, context=context)


def bare_pass(model: torch.nn.Module, batch: int, size: int) -> float:
    """Seconds for a forward and backward pass of ``model`` on a random batch."""
    images = torch.rand(batch, 1, size, size)
    start = time.perf_counter()
    model(images).abs().mean().backward()
    return time.perf_counter() - start


def training_steps(channels: int, slices: SliceSet, training: TrainingConfig, seed: int) -> float:
    """Seconds per step of one epoch of ``train_harmonizer`` over ``slices``."""
    steps = -(-len(slices) // training.batch_size)
    model = build_model(UNetConfig(in_channels=channels), seed=0)
    start = time.perf_counter()
    train_harmonizer(
        model,
        slices,
        training,
        AugmentationConfig(),
        percentiles=ProfileConfig().percentiles,
        device=torch.device("cpu"),
        key=(seed,),
        progress=False,
    )
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch", type=int, default=16, help="slices per step (16 is the training default)"
    )
    parser.add_argument("--size", type=int, default=112, help="slice height and width")
    parser.add_argument(
        "--channels", type=int, nargs="+", default=[1, 3, 5], help="in_channels to time"
    )
    parser.add_argument("--steps", type=int, default=8, help="steps per timed training call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per setting; medians")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    floor_model = build_model(UNetConfig(), seed=0)
    sets = {
        c: training_slices(args.size, args.batch * args.steps, context_slices(c))
        for c in args.channels
    }
    training = TrainingConfig(epochs=1, batch_size=args.batch)
    for channels, slices in sets.items():  # warm-up: compiled kernels, allocator
        subset = SliceSet(
            targets=slices.targets,
            masks=slices.masks,
            neighbours=slices.neighbours,
            centres=slices.centre_rows()[: args.batch],
        )
        training_steps(channels, subset, training, seed=0)
    bare_pass(floor_model, args.batch, args.size)

    floors: list[float] = []
    steps: dict[int, list[float]] = {c: [] for c in args.channels}
    for repeat in range(args.repeats):
        for channels, slices in sets.items():
            floors.append(bare_pass(floor_model, args.batch, args.size))
            steps[channels].append(training_steps(channels, slices, training, repeat))
    floor = statistics.median(floors)
    print(
        f"batch {args.batch} x {args.size}x{args.size}, {args.threads} threads, "
        f"medians of {args.repeats} calls of {args.steps} steps"
    )
    print(f"\nbare 2D forward + backward: {1e3 * floor:.1f} ms\n")
    print("| in_channels | training step (ms) | ratio to the floor |\n|---|---|---|")
    for channels, values in steps.items():
        step = statistics.median(values)
        print(f"| {channels} | {1e3 * step:.1f} | {step / floor:.2f} |")


if __name__ == "__main__":
    main()
