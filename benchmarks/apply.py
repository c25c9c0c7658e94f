"""Wall time and peak memory of ``fedharmonize apply`` on one 197x233x189 volume.

The floor is a bare forward pass of the same U-Net over the same slices,
measured in this run; the figure that matters is apply's wall time against it
(what loading, masking, N4 of the input, normalizing and writing add), plus the
absolute time and peak memory that the done-criteria name.

    .venv/bin/python benchmarks/apply.py [--shape 197 233 189] [--threads 2]
        [--bias-correction n4|none]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.artifact import Provenance, save_artifact  # noqa: E402
from common.configs.model import UNetConfig  # noqa: E402
from common.model import build_model  # noqa: E402
from common.profile import ReferenceProfile  # noqa: E402


def synthetic_scan(shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))
    volume = np.where(radius < 0.8, 400.0, 0.0) + np.where(radius < 0.5, 300.0, 0.0)
    return (volume + 20 * np.abs(rng.standard_normal(shape))).astype(np.float32)


def bare_forward_seconds(shape: tuple[int, int, int], batch: int) -> float:
    model = build_model(UNetConfig(), seed=0).eval()
    slices = torch.rand(shape[2], 1, shape[0], shape[1])
    with torch.inference_mode():
        model(slices[:batch])  # warm-up
        start = time.perf_counter()
        for i in range(0, shape[2], batch):
            model(slices[i : i + batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[197, 233, 189])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--bias-correction",
        choices=["n4", "none"],
        default="n4",
        help="the model's input preparation (default n4, as default training gives)",
    )
    args = parser.parse_args()
    shape = tuple(args.shape)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        nib.save(nib.Nifti1Image(synthetic_scan(shape), np.eye(4)), str(scratch / "scan.nii.gz"))
        profile = ReferenceProfile(
            modality="T1w",
            percentiles=(1.0, 50.0, 99.0),
            landmarks=(0.1, 0.6, 1.0),
            radial_power=(0.7, 0.2, 0.07, 0.03),
            n_cases=3,
        )
        provenance = Provenance(
            mode="local", sites=("bench",), reference_sites=("bench",), rounds=0
        )
        save_artifact(
            scratch / "model",
            build_model(UNetConfig(), 0),
            profile,
            provenance,
            input_bias_correction=args.bias_correction,
        )
        floor = bare_forward_seconds(shape, batch=8)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fedharmonize.cli.main",
                "apply",
                "--model",
                str(scratch / "model"),
                str(scratch / "scan.nii.gz"),
                "--output",
                str(scratch / "out"),
                "--device",
                "cpu",
            ],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(
        "| volume | threads | bare forward (s) | apply wall (s) | apply / forward | peak RSS (GB) |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {'x'.join(map(str, shape))} | {args.threads} | {floor:.2f} | {wall:.2f} | "
        f"{wall / floor:.2f} | {peak_gb:.2f} |"
    )


if __name__ == "__main__":
    main()
