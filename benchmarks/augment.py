"""Cost of the full augmentation against a bare rfft2 + irfft2 round trip of the same batch.

Done-criterion: the augmentation (sampling included, every alteration enabled
at its default probability) costs at most twice the round trip. Both are timed
in the same run, interleaved so that load from other processes hits both
alike; the figures are medians after a warm-up.

    python benchmarks/augment.py --batch 32 --size 256 --repeats 30 [--breakdown]

``--breakdown`` also times the stages of the torch path on the same batches;
``--torch-path`` times that whole path (what the CPU ran before the compiled
kernels of ``common.augment.fused``), interleaved with the rest.

On a CPU the augmentation runs in blocks of a few slices that stay in the
cache (``CPU_BLOCK_PIXELS``). The same blocking speeds up a bare round trip
too, so the table also gives the ratio to a round trip run in the same
blocks: the stricter floor.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from common.augment import (
    Augmenter,
    apply_alterations,
    intensity,
    kspace,
    pipeline,
    sample_alterations,
)
from common.augment.pipeline import CPU_BLOCK_PIXELS
from common.configs.augmentation import AugmentationConfig


def phantom_batch(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Head-like slices in profile units: CSF 0.25, GM 0.65, WM 1.0 ellipses, background 0."""
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    scale = 0.85 + 0.1 * torch.rand(batch, 2, generator=generator)
    radius = torch.hypot(y / scale[:, :1, None], x / scale[:, 1:, None])
    images = torch.zeros(batch, size, size)
    for edge, value in ((0.9, 0.25), (0.8, 0.65), (0.55, 1.0)):
        images = torch.where(radius < edge, value, images)
    return images


def _seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def stage_breakdown(images: torch.Tensor, repeats: int, generator: torch.Generator) -> None:
    """Median time of each pipeline stage, applied to the whole batch as the pipeline does."""
    config, (batch, height, width) = AugmentationConfig(), images.shape
    samples = [sample_alterations(config, batch, (height, width), generator) for _ in range(8)]
    stages = {
        "sampling": lambda p: sample_alterations(config, batch, (height, width), generator),
        "contrast curve": lambda p: intensity.curve_shape(images, p.curve_window, p.curve_slopes),
        "acquisition (FFTs, filter, PF, spikes, noise, magnitude)": lambda p: (
            kspace.simulate_acquisition(images, p.kspace_params(p.curve_slopes[:, 0]))
        ),
        "shading, gain and offset": lambda p: intensity.shade(
            images, p.bias_coefficients, p.curve_slopes[:, 0] * p.gain, p.offset
        ),
        "whole augmentation (sampled above)": lambda p: apply_alterations(images, p),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for repeat in range(repeats):
        for name, stage in stages.items():
            params = samples[repeat % len(samples)]
            times[name].append(_seconds(lambda stage=stage, params=params: stage(params)))
    print("\n| stage | median (ms) |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {1e3 * statistics.median(values):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="slices per batch")
    parser.add_argument("--size", type=int, default=256, help="slice height and width")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls; medians")
    parser.add_argument("--threads", type=int, default=2, help="torch (and kernel) threads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each stage of the torch path"
    )
    parser.add_argument(
        "--unblocked",
        action="store_true",
        help="also time the torch path in one pass over the whole batch (no CPU blocks)",
    )
    parser.add_argument(
        "--torch-path",
        action="store_true",
        help="also time the plain torch path in blocks (FEDHARMONIZE_FUSED_AUGMENT=0), "
        "which the compiled CPU kernels replace",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    images = phantom_batch(args.batch, args.size, generator)
    augmenter = Augmenter(AugmentationConfig())

    def round_trip() -> torch.Tensor:
        spectrum = torch.fft.rfft2(images, norm="ortho")
        return torch.fft.irfft2(spectrum, s=images.shape[-2:], norm="ortho")

    block = max(1, CPU_BLOCK_PIXELS // (args.size * args.size))

    def blocked_round_trip() -> list[torch.Tensor]:
        return [
            torch.fft.irfft2(torch.fft.rfft2(part, norm="ortho"), s=part.shape[-2:], norm="ortho")
            for part in images.split(block)
        ]

    def augment() -> torch.Tensor:
        return augmenter(images, generator)[0]

    def augment_unblocked() -> torch.Tensor:
        params = sample_alterations(
            AugmentationConfig(), *images.shape[:1], images.shape[1:], generator
        )
        return pipeline._apply_block(images, params)

    def augment_torch_path() -> torch.Tensor:
        before = os.environ.get("FEDHARMONIZE_FUSED_AUGMENT")
        os.environ["FEDHARMONIZE_FUSED_AUGMENT"] = "0"
        try:
            return augmenter(images, generator)[0]
        finally:
            if before is None:
                os.environ.pop("FEDHARMONIZE_FUSED_AUGMENT")
            else:
                os.environ["FEDHARMONIZE_FUSED_AUGMENT"] = before

    timed = {"round trip": round_trip, "blocked": blocked_round_trip, "augmentation": augment}
    if args.unblocked:
        timed["unblocked"] = augment_unblocked
    if args.torch_path:
        timed["torch path"] = augment_torch_path
    for _ in range(args.warmup):
        for function in timed.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(args.repeats):
        for name, function in timed.items():
            times[name].append(_seconds(function))
    base_ms, blocked_ms, full_ms, *rest = (1e3 * statistics.median(times[n]) for n in timed)
    print(
        "| batch | size | threads | repeats | rfft2+irfft2 (ms) | the same in blocks (ms) "
        "| augmentation (ms) | ratio | ratio to blocks |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.batch} | {args.size} | {args.threads} | {args.repeats} "
        f"| {base_ms:.2f} | {blocked_ms:.2f} | {full_ms:.2f} | {full_ms / base_ms:.2f} "
        f"| {full_ms / blocked_ms:.2f} |"
    )
    for name, value in zip(list(timed)[3:], rest, strict=True):
        label = {"unblocked": "torch path in one pass (no blocks)", "torch path": "torch path"}
        print(f"\n{label[name]}: {value:.2f} ms, ratio {value / base_ms:.2f}")
    if args.breakdown:
        stage_breakdown(images, args.repeats, generator)


if __name__ == "__main__":
    main()
