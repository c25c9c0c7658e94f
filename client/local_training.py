"""Training without federation: pooled sites (the centralized upper bound) or one site.

The steps mirror the federation so the two are comparable: each reference site
fits its own profile, the profiles are merged weighted by case count, every
site's cases are mapped onto the merged profile, and one U-Net trains on all of
the resulting targets.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.artifact import ArtifactMetadata, Provenance, save_artifact, software_versions
from common.augment.stack import context_slices
from common.configs.settings import HarmonizerSettings
from common.errors import InputError
from common.model import build_model
from common.profile import ReferenceProfile, merge_profiles
from common.sites import SiteFolder
from common.slices import collect_slices
from common.target_denoising import denoise_weight, recorded_denoise_weight
from common.targets import (
    ReferenceCase,
    load_reference_cases,
    site_profile,
    split_held_out,
    training_targets,
)
from common.training import TrainingResult, train_harmonizer

logger = logging.getLogger(__name__)

TRAINING_LOG = "training.json"


@dataclass(frozen=True)
class LocalTrainingOutcome:
    metadata: ArtifactMetadata
    result: TrainingResult
    num_slices: int


def choose_reference_sites(sites: Sequence[SiteFolder], requested: Sequence[str]) -> list[str]:
    """The named reference sites, or every site whose site.toml lets it contribute."""
    names = [site.name for site in sites]
    unknown = [name for name in requested if name not in names]
    if unknown:
        raise InputError(
            f"--reference-site {', '.join(unknown)}: not among the training sites "
            f"({', '.join(names)})"
        )
    chosen = list(requested) or [s.name for s in sites if s.config.reference_contributor]
    if not chosen:
        raise InputError("no reference site: every site.toml says reference_contributor = false")
    return chosen


def consortium_profile(
    cases_by_site: dict[str, list[ReferenceCase]],
    reference_sites: Sequence[str],
    settings: HarmonizerSettings,
    modality: str,
) -> ReferenceProfile:
    profiles = [site_profile(cases_by_site[n], settings.profile, modality) for n in reference_sites]
    return merge_profiles(profiles, settings.profile.min_cases)


def train_local(
    sites: Sequence[SiteFolder],
    run_dir: Path,
    settings: HarmonizerSettings,
    *,
    reference_sites: Sequence[str] = (),
    device_name: str,
    progress: bool = True,
    profile: ReferenceProfile | None = None,
    cache_root: Path | None = None,
    label: str = "train-local",
    federated_split: bool = False,
) -> LocalTrainingOutcome:
    """Pool the sites' reference cases, train, and write ``run_dir/model``.

    A given ``profile`` (for example the federation's, which is statistics, not
    images) replaces the one fitted here, so a site without reference-protocol
    scans can still train alone: the local-only comparison of a federated run.
    ``cache_root/<site>`` holds prepared (bias-corrected) cases between runs.
    ``federated_split``: train only on the cases a federated run trains on (each
    site's held-out case kept back, see :func:`split_held_out`), so a comparison
    model sees the same data as the federation; the profile still uses them all.
    """
    from common.device import resolve_device

    device = resolve_device(device_name)
    modalities = {site.config.modality for site in sites}
    if len(modalities) > 1:
        raise InputError(f"sites disagree on modality ({', '.join(sorted(modalities))})")
    modality = modalities.pop()
    references = (
        list(reference_sites) if profile else choose_reference_sites(sites, reference_sites)
    )
    cases_by_site = {
        site.name: load_reference_cases(
            site.reference_files,
            settings.profile,
            progress=progress,
            label=site.name,
            cache_dir=cache_root / site.name if cache_root else None,
        )
        for site in sites
    }
    if profile is None:
        profile = consortium_profile(cases_by_site, references, settings, modality)
    if federated_split:
        cases_by_site = {
            name: split_held_out(cases, settings.profile.min_cases)[0]
            for name, cases in cases_by_site.items()
        }
    cases = [case for name in cases_by_site for case in cases_by_site[name]]
    detail = [name in references for name in cases_by_site for _ in cases_by_site[name]]
    reference_cases = sum(detail)
    denoise = denoise_weight(settings.training, reference_cases, len(cases))
    training = settings.with_overrides("training", pseudo_target_denoise=denoise).training
    targets = training_targets(cases, profile, settings.profile)
    slices = collect_slices(
        targets,
        [case.mask for case in cases],
        settings.training.min_slice_foreground,
        detail,
        context_slices(settings.model.in_channels),
    )
    logger.info(
        "training on %d slices from %d cases at %d sites", len(slices), len(cases), len(sites)
    )
    model = build_model(settings.model, seed=settings.training.seed)
    result = train_harmonizer(
        model,
        slices,
        training,
        settings.augmentation,
        percentiles=profile.percentiles,
        device=device,
        progress=progress,
        description=label,
    )
    provenance = Provenance(
        mode="centralized" if len(sites) > 1 else "local",
        sites=tuple(site.name for site in sites),
        reference_sites=tuple(references),
        rounds=0,
        versions=software_versions(),
        settings=json.loads(settings.model_dump_json()),
        training_cases=len(cases),
        reference_training_cases=reference_cases,
        pseudo_target_denoise_used=recorded_denoise_weight(
            settings.training, reference_cases, len(cases)
        ),
    )
    metadata = save_artifact(
        Path(run_dir) / "model",
        model.cpu(),
        profile,
        provenance,
        input_bias_correction=settings.profile.bias_correction,
    )
    log = {"epoch_losses": result.epoch_losses, "num_slices": len(slices), "num_cases": len(cases)}
    (Path(run_dir) / TRAINING_LOG).write_text(json.dumps(log, indent=2), encoding="utf-8")
    return LocalTrainingOutcome(metadata=metadata, result=result, num_slices=len(slices))
