"""The models a federated run is judged against, trained with the same budget.

- centralized: one U-Net on every site's cases pooled (what the federation
  would reach if the images could move);
- local-only: each site alone, with the federation's reference profile (a
  profile is statistics, not images, so a site could have it without joining).

Budget: the same total training as the federation, counted in slice passes.
R rounds of E local epochs over all sites become R x E epochs of the pooled
data for the centralized model; a local-only model gets the same number of
slice passes on its own data, so R x E x (all training cases / its training
cases) epochs (sites' cases have about the same number of slices). A
local-only model of the reference site is then "the reference site alone, with the same budget".
With ``non_reference_share`` below 1 a non-reference site's cases count by
that share, since it trains on that share of its slices each round.

Data: every comparison model trains on exactly the cases the federation trained
on; the case each site keeps back for the federation's held-out loss is kept
back here too (see ``common.targets.held_out_count``).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from client.local_training import train_local
from common.artifact import read_metadata
from common.configs.settings import HarmonizerSettings
from common.sites import SiteFolder, discover_sites
from common.targets import held_out_count

logger = logging.getLogger(__name__)

COMPARE_DIR = "compare"


@dataclass(frozen=True)
class ComparisonPlan:
    sites_root: Path
    run_dir: Path
    settings: HarmonizerSettings  # the federation's settings; epochs are set from the budget
    epochs: int
    reference_sites: tuple[str, ...] = ()
    local_only: tuple[str, ...] | None = None  # sites trained alone; () = every site
    device: str = "auto"
    centralized: bool = True  # False: only the local-only models (pairing a seed costs less)


def training_cases(site: SiteFolder, settings: HarmonizerSettings) -> int:
    """How many of the site's cases the federation trains on."""
    count = len(site.reference_files)
    return count - held_out_count(count, settings.profile.min_cases)


def slice_pass_cases(
    sites: list[SiteFolder], settings: HarmonizerSettings, reference_sites: tuple[str, ...]
) -> float:
    """Cases a federated round trains on: a non-reference site counts by its round share."""
    share = settings.training.non_reference_share
    return sum(
        training_cases(site, settings) * (1.0 if site.name in reference_sites else share)
        for site in sites
    )


def train_comparisons(plan: ComparisonPlan) -> dict[str, Path]:
    """Train the centralized model (unless skipped) and, when asked, local-only models.

    Returns display name -> model folder, under ``RUN/compare/``.
    """
    sites = discover_sites(plan.sites_root)
    federated = read_metadata(plan.run_dir / "model")
    total_cases = sum(training_cases(site, plan.settings) for site in sites)
    passes = plan.epochs * slice_pass_cases(
        sites, plan.settings, federated.provenance.reference_sites
    )
    pooled_epochs = max(1, round(passes / total_cases))
    settings = plan.settings.with_overrides("training", epochs=pooled_epochs)
    cache_root = plan.run_dir / "cache"
    models = {}
    if plan.centralized:
        centralized = plan.run_dir / COMPARE_DIR / "centralized"
        logger.info("centralized comparison: %d epochs on pooled data", pooled_epochs)
        train_local(
            sites,
            centralized,
            settings,
            reference_sites=plan.reference_sites,
            device_name=plan.device,
            cache_root=cache_root,
            label="centralized",
            federated_split=True,
        )
        models["centralized"] = centralized / "model"
    if plan.local_only is not None:
        chosen = [s for s in sites if not plan.local_only or s.name in plan.local_only]
        for site in chosen:
            folder = plan.run_dir / COMPARE_DIR / f"local-{site.name}"
            epochs = max(1, round(passes / training_cases(site, settings)))
            logger.info("local-only comparison at %s: %d epochs", site.name, epochs)
            train_local(
                [site],
                folder,
                settings.with_overrides("training", epochs=epochs),
                reference_sites=federated.provenance.reference_sites,
                device_name=plan.device,
                profile=federated.reference_profile,
                cache_root=cache_root,
                label=f"local {site.name}",
                federated_split=True,
            )
            models[f"local {site.name}"] = folder / "model"
    return models
