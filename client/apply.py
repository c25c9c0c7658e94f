"""Harmonize a site's own NIfTI scans with a received model, on the site's machine.

Inputs are files or folders (searched recursively). Each input gives one output
under the output folder with the same name (folders keep their inner layout).
A bad input is reported and skipped; the others still run. Inputs are only
ever read, and outputs appear atomically.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from common.artifact import Artifact
from common.bias_correction import apply_bias_correction
from common.errors import HarmonizationError, InputError
from common.harmonize import harmonize_volume
from common.input_mapping import InputMapping
from common.mask import foreground_mask
from common.nifti import is_nifti_path, load_mask, load_volume, save_like

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyJob:
    source: Path
    destination: Path


@dataclass
class ApplySummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def plan_jobs(
    inputs: Sequence[Path], output_dir: Path, *, overwrite: bool = False
) -> list[ApplyJob]:
    """Map every input scan to its output path; refuse plans that would lose data."""
    jobs: list[ApplyJob] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and is_nifti_path(p))
            if not found:
                raise InputError(f"{item}: no .nii or .nii.gz files in this folder")
            jobs.extend(ApplyJob(p, output_dir / p.relative_to(item)) for p in found)
        elif item.is_file():
            if not is_nifti_path(item):
                raise InputError(f"{item}: not a NIfTI file (expected .nii or .nii.gz)")
            jobs.append(ApplyJob(item, output_dir / item.name))
        else:
            raise InputError(f"{item}: no such file or folder")
    sources = {job.source.resolve() for job in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        destination = job.destination.resolve()
        if destination in sources:
            raise InputError(
                f"{job.destination}: would overwrite an input scan; choose another --output folder"
            )
        if destination in seen:
            raise InputError(
                f"{job.destination}: two inputs ({seen[destination]} and {job.source}) "
                "would write the same output; apply them separately"
            )
        if destination.exists() and not overwrite:
            raise InputError(f"{job.destination}: already exists (pass --overwrite to replace it)")
        seen[destination] = job.source
    return jobs


def harmonize_file(
    artifact: Artifact,
    job: ApplyJob,
    mask_path: Path | None,
    device: torch.device,
    input_mapping: InputMapping = "landmarks",
) -> None:
    volume = load_volume(job.source)
    mask = load_mask(mask_path, volume) if mask_path else foreground_mask(volume.data)
    profile = artifact.metadata.reference_profile
    prepared = apply_bias_correction(
        volume.data, mask, volume.spacing, artifact.metadata.input_bias_correction
    )
    harmonized = harmonize_volume(
        artifact.model, prepared, mask, profile, device=device, input_mapping=input_mapping
    )
    save_like(volume, harmonized, job.destination)


def apply_model(
    artifact: Artifact,
    jobs: Sequence[ApplyJob],
    *,
    mask_path: Path | None = None,
    device: torch.device,
    progress: bool = True,
    input_mapping: InputMapping = "landmarks",
) -> ApplySummary:
    """Run every job; a failing input is recorded and skipped, not fatal."""
    summary = ApplySummary()
    for job in tqdm(jobs, desc="harmonizing", unit="scan", disable=None if progress else True):
        try:
            harmonize_file(artifact, job, mask_path, device, input_mapping)
        except HarmonizationError as error:
            message = str(error) if str(job.source) in str(error) else f"{job.source}: {error}"
            logger.warning("skipped %s", message)
            summary.failed.append((job.source, message))
        else:
            summary.written.append(job.destination)
    return summary
