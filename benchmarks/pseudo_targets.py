"""Cost of denoising pseudo-targets, against the two forward passes that make them.

A non-reference site makes its round's targets with two passes of the global
model (``pseudo_target_passes = 2``), then denoises them by total variation
(``pseudo_target_denoise``). The floor is the same call with denoising off,
timed in the same run and interleaved with it, so that load from other
processes hits both alike. Medians after a warm-up.

    python benchmarks/pseudo_targets.py --slices 64 --size 112 --repeats 5

The slices come from the same synthetic head-like volume as
``benchmarks/training_step.py``, with pixel noise, so no data is needed.
"""

import argparse
import statistics
import time

import torch
from training_step import head_like_volume  # benchmarks/ is the script's own folder

from common.configs.model import UNetConfig
from common.model import build_model
from common.slices import SliceSet
from common.training import pseudo_targets


def noisy_slices(count: int, size: int) -> SliceSet:
    """``count`` noisy axial slices of a head-like volume, none of them reference slices."""
    volume = torch.from_numpy(head_like_volume(size, count)).permute(2, 0, 1).contiguous()
    generator = torch.Generator().manual_seed(0)
    masks = volume > 0
    targets = (volume + 0.05 * torch.randn(volume.shape, generator=generator)) * masks
    return SliceSet(targets=targets, masks=masks, detail=torch.zeros(count, dtype=torch.bool))


def seconds(model: torch.nn.Module, slices: SliceSet, denoise: float) -> float:
    """Wall time of one ``pseudo_targets`` call with two passes."""
    start = time.perf_counter()
    pseudo_targets(model, slices, torch.device("cpu"), batch_size=16, passes=2, denoise=denoise)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--weight", type=float, default=0.04)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = build_model(UNetConfig(), seed=0)
    slices = noisy_slices(args.slices, args.size)
    seconds(model, slices, args.weight)  # warm-up
    floor, denoised = [], []
    for _ in range(args.repeats):
        floor.append(seconds(model, slices, 0.0))
        denoised.append(seconds(model, slices, args.weight))
    base, total = statistics.median(floor), statistics.median(denoised)
    print(f"threads {torch.get_num_threads()}, {args.slices} slices of {args.size}^2")
    print(f"two passes (floor): {base * 1000:.0f} ms")
    print(f"two passes + TV {args.weight}: {total * 1000:.0f} ms, ratio {total / base:.2f}")


if __name__ == "__main__":
    main()
