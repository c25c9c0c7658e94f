"""What a site does in each federated round, without any Flower types.

The ClientApp translates messages into these calls: fit the site's own
reference profile (round 0), prepare training targets on the consortium
profile, train local epochs from the received weights, and evaluate on the
held-out reference case.
"""

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from common.augment.stack import StackAugmenter, context_slices
from common.configs.settings import HarmonizerSettings
from common.input_mapping import slice_landmarks
from common.model import build_model
from common.profile import ReferenceProfile
from common.sites import SiteFolder, read_site
from common.slices import SliceSet, collect_slices
from common.targets import (
    ReferenceCase,
    load_reference_cases,
    site_profile,
    split_held_out,
    training_targets,
)
from common.training import (
    TrainingResult,
    altered_batch,
    configured_pseudo_targets,
    harmonization_loss,
    network_input,
    stack_width,
    train_harmonizer,
    training_generator,
)

logger = logging.getLogger(__name__)

EVALUATION_KEY = 99_991  # a fixed stream, so every round evaluates on the same alterations
SHARE_STREAM = 0x5A4E  # keeps the subset draw apart from the training draws of the same key


@dataclass(frozen=True)
class SiteCases:
    """A site's prepared reference cases, split into training and held-out cases."""

    site: SiteFolder
    training: tuple[ReferenceCase, ...]
    held_out: tuple[ReferenceCase, ...]


@lru_cache(maxsize=8)
def _load_site_cached(data_path: str, settings_json: str, cache_dir: str) -> SiteCases:
    settings = HarmonizerSettings.model_validate_json(settings_json)
    site = read_site(Path(data_path))
    cases = tuple(
        load_reference_cases(
            site.reference_files,
            settings.profile,
            label=site.name,
            cache_dir=Path(cache_dir) if cache_dir else None,
        )
    )
    training, held_out = split_held_out(cases, settings.profile.min_cases)
    logger.info("%s: %d training and %d held-out cases", site.name, len(training), len(held_out))
    return SiteCases(site=site, training=training, held_out=held_out)


def load_site_cases(
    data_path: Path, settings: HarmonizerSettings, cache_dir: Path | None = None
) -> SiteCases:
    """Load, mask and bias-correct a site's cases once per process (and once per disk cache).

    The Simulation Engine reuses its processes across rounds; a SuperNode starts
    a fresh one per message, which ``cache_dir`` covers.
    """
    return _load_site_cached(
        str(Path(data_path).resolve()), settings.model_dump_json(), str(cache_dir or "")
    )


def shapes_reference(site: SiteFolder, allowed_sites: Sequence[str]) -> bool:
    """Whether the site's cases shape the reference contrast (and so teach fine detail)."""
    if not site.config.reference_contributor:
        return False
    return not allowed_sites or site.name in allowed_sites


def local_profile(
    cases: SiteCases, settings: HarmonizerSettings, allowed_sites: Sequence[str]
) -> ReferenceProfile | None:
    """The site's reference profile, or None when it does not contribute one.

    A site contributes when its site.toml allows it and, if the run names
    reference sites, it is among them. Fewer than ``min_cases`` cases is refused.
    """
    if not shapes_reference(cases.site, allowed_sites):
        return None
    every_case = [*cases.training, *cases.held_out]
    return site_profile(every_case, settings.profile, cases.site.config.modality)


@lru_cache(maxsize=8)
def _slices_cached(
    data_path: str,
    settings_json: str,
    profile_json: str,
    part: Literal["training", "held_out"],
    cache_dir: str,
    detail: bool,
) -> SliceSet:
    cases = getattr(_load_site_cached(data_path, settings_json, cache_dir), part)
    if not cases:
        return SliceSet(torch.zeros(0, 1, 1), torch.zeros(0, 1, 1, dtype=torch.bool))
    profile = ReferenceProfile.model_validate_json(profile_json)
    settings = HarmonizerSettings.model_validate_json(settings_json)
    targets = training_targets(cases, profile, settings.profile)
    minimum = settings.training.min_slice_foreground
    context = context_slices(settings.model.in_channels)
    masks = [c.mask for c in cases]
    return collect_slices(targets, masks, minimum, [detail] * len(cases), context)


def site_slices(
    data_path: Path,
    settings: HarmonizerSettings,
    profile: ReferenceProfile,
    part: Literal["training", "held_out"],
    cache_dir: Path | None = None,
    *,
    detail: bool = True,
) -> SliceSet:
    """Target slices of the site's training or held-out cases on the consortium profile.

    ``detail``: the site shapes the reference contrast (see :class:`SliceSet`).
    Cached per (site, settings, profile): the profile is fixed after round 0.
    """
    return _slices_cached(
        str(Path(data_path).resolve()),
        settings.model_dump_json(),
        profile.model_dump_json(),
        part,
        str(cache_dir or ""),
        detail,
    )


def round_share(slices: SliceSet, share: float, key: Sequence[int], seed: int) -> SliceSet:
    """A seeded subset of ``share`` of the slices (at least one) for one round; all at 1.

    ``key`` is (site, round): every round draws afresh, so over the rounds the
    site still teaches all of its slices, and a replayed round draws the same.
    Slices with neighbours (2.5D) keep them all: the share chooses centres only.
    """
    if share >= 1.0:
        return slices
    count = max(1, round(share * len(slices)))
    generator = training_generator(seed, (*key, SHARE_STREAM))
    chosen = torch.randperm(len(slices), generator=generator)[:count].sort().values
    if slices.neighbours is not None:
        return dataclasses.replace(slices, centres=slices.centre_rows(chosen))
    detail = None if slices.detail is None else slices.detail[chosen]
    return SliceSet(targets=slices.targets[chosen], masks=slices.masks[chosen], detail=detail)


def model_from_state(
    state: Mapping[str, torch.Tensor], settings: HarmonizerSettings
) -> torch.nn.Module:
    model = build_model(settings.model, seed=settings.training.seed)
    model.load_state_dict(dict(state))
    return model


def train_round(
    state: Mapping[str, torch.Tensor],
    slices: SliceSet,
    profile: ReferenceProfile,
    settings: HarmonizerSettings,
    *,
    device: torch.device,
    key: Sequence[int],
    proximal_mu: float = 0.0,
    optimizer_state: dict | None = None,
    pseudo: bool = False,
) -> tuple[dict[str, torch.Tensor], TrainingResult]:
    """Train local epochs from the received weights; returns new weights (CPU) and stats.

    ``optimizer_state``: the moments this site kept from its previous round, if any.
    ``pseudo``: the received model first harmonizes the site's non-reference
    slices, and its outputs are their targets (see ``pseudo_targets``).
    """
    model = model_from_state(state, settings)
    if pseudo:
        slices = configured_pseudo_targets(model, slices, device, settings.training)
    result = train_harmonizer(
        model,
        slices,
        settings.training,
        settings.augmentation,
        percentiles=profile.percentiles,
        device=device,
        key=key,
        proximal_mu=proximal_mu,
        progress=False,
        optimizer_state=optimizer_state,
    )
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}, result


@torch.inference_mode()
def evaluate_slices(
    state: Mapping[str, torch.Tensor],
    slices: SliceSet,
    profile: ReferenceProfile,
    settings: HarmonizerSettings,
    *,
    device: torch.device,
) -> dict[str, float]:
    """Loss and fidelity of the model on a fixed set of altered held-out slices.

    ``identity-loss`` is the same loss for the untouched (landmark-mapped) input,
    so ``loss`` below it means the network improves on doing nothing.
    """
    model = model_from_state(state, settings).to(device).eval()
    generator = training_generator(settings.training.seed, (EVALUATION_KEY,))
    channels = settings.model.in_channels
    width = stack_width(slices, channels) if len(slices) else 1
    augmenter = StackAugmenter(settings.augmentation, channels)
    weight = settings.training.gradient_loss_weight
    totals = {"loss": 0.0, "identity-loss": 0.0, "nmae": 0.0}
    count = 0
    batch_size = settings.training.batch_size
    for start in range(0, len(slices), batch_size):
        index = torch.arange(start, min(start + batch_size, len(slices)))
        target, mask, altered = altered_batch(slices, index, width, augmenter, generator, device)
        landmarks = slice_landmarks(target, mask, profile.percentiles)
        inputs = network_input(altered, mask, landmarks, profile.percentiles)
        mapped = inputs[:, channels // 2]
        prediction = model(inputs)[:, 0]
        n = len(target)
        totals["loss"] += float(harmonization_loss(prediction, target, mask, weight)) * n
        totals["identity-loss"] += float(harmonization_loss(mapped, target, mask, weight)) * n
        error = ((prediction - target).abs() * mask).sum() / (target.abs() * mask).sum()
        totals["nmae"] += float(error) * n
        count += n
    return {name: value / max(count, 1) for name, value in totals.items()}


AGGREGATION_WEIGHT = "aggregation-weight"
# Round 0's one metric: how many cases a site trains on. The server scales the
# pseudo-target denoising by the reference sites' share of them and sends the
# weight in every train config under DENOISE_KEY (no single site knows the share).
TRAINING_CASES = "training-cases"
DENOISE_KEY = "pseudo-target-denoise"


def describe_result(result: TrainingResult, influence: float = 1.0) -> dict[str, float]:
    """Scalar training metrics for the reply (never per-image values).

    ``aggregation-weight`` is what the server averages the weights by: the
    number of examples, times ``influence`` (below 1 for a site whose targets
    are not in the reference contrast; see TrainingConfig.non_reference_weight).
    """
    return {
        "train-loss": float(result.final_loss),
        "train-loss-first-epoch": float(result.epoch_losses[0]),
        "num-examples": float(result.num_examples),
        AGGREGATION_WEIGHT: float(result.num_examples) * influence,
    }
