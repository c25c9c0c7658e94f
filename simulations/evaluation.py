"""Evaluation on a benchmark folder: models against raw scans and classical baselines.

Every traveling-subject scan under ``test/`` is harmonized by each model and by
each baseline (z-score, WhiteStripe, Nyúl, N4 + Nyúl with and without light
smoothing; the Nyúl profiles are fitted on the reference site's reference
cases, never on the scan being harmonized). Reported, averaged over subjects:
the cross-site coefficient of variation of WM, GM and CSF means and the spread
of the WM/GM ratio (site effect; lower is better), the mean pairwise histogram
Jensen-Shannon divergence (lower is better), a site classifier's
leave-one-subject-out accuracy (best at chance), the scale-fitted NMAE against
the ground truth (fidelity; lower is better), the gradient-magnitude
correlation with the ground truth (anatomy kept; higher is better), the
slice-to-slice jitter of WM brightness beyond the ground truth's (slice
consistency; lower is better) and a high-pass noise proxy in WM (lower is
better, but read it beside the edge agreement: blurring also lowers it); then,
for familiarity only, HaarPSI, SSIM and PSNR against the ground truth (higher is
better; see :mod:`common.image_quality`). The jitter is taken on
:func:`~common.metrics.scale_free` images, so methods that move the zero of the
intensity scale (z-score, WhiteStripe) are not punished for near-zero WM means.

Fidelity and edge agreement are also kept per site (averaged over subjects),
because a mean over sites can hide a hospital whose scans a method serves worse.

    fedharmonize evaluate --model RUN/model --benchmark PHANTOMS [--out DIR]
"""

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from client.apply import ApplyJob, harmonize_file
from common.artifact import load_artifact, read_metadata
from common.configs.profile import ProfileConfig
from common.errors import InputError
from common.image_quality import full_reference_scores
from common.mask import foreground_mask
from common.metrics import (
    TISSUES,
    cross_site_cv,
    gradient_correlation,
    high_pass_noise,
    mean_pairwise_jsd,
    normalized_histogram,
    ratio_spread,
    scale_fitted_nmae,
    scale_free,
    scale_free_tissue_means,
    site_classifier_accuracy,
    slice_jitter,
)
from common.nifti import load_volume
from common.profile import ReferenceProfile
from common.sites import SiteFolder, discover_sites
from common.targets import load_reference_cases, site_profile
from simulations.baselines import BASELINES, Baseline
from simulations.metric_catalogue import metric_info, ordered_keys

Loader = Callable[[Path], np.ndarray]
SiteScores = dict[str, dict[str, float]]  # site -> {"nmae": ..., "gradient_corr": ...}
PER_SITE_KEYS = ("nmae", "gradient_corr")


def site_names(benchmark: Path) -> list[str]:
    return sorted(p.name for p in (benchmark / "sites").iterdir() if p.is_dir())


@dataclass(frozen=True)
class SubjectScores:
    """One traveling subject: its metrics, fidelity per site, and histograms for the classifier."""

    scores: dict[str, float]
    per_site: SiteScores
    histograms: list[np.ndarray]


@dataclass(frozen=True)
class BenchmarkScores:
    """Every method's metrics (averaged over subjects), and fidelity per site."""

    table: dict[str, dict[str, float]]
    per_site: dict[str, SiteScores]  # method -> site -> metric


def score_subject(subject: Path, sites: list[str], image_of: Loader) -> SubjectScores:
    """Metrics for one traveling subject; ``image_of(path)`` gives the image to score."""
    brain = load_volume(subject / "brain_mask.nii.gz").data > 0.5
    masks = {t: load_volume(subject / f"{t}_mask.nii.gz").data > 0.5 for t in TISSUES}
    truth = load_volume(subject / "groundtruth_T1w.nii.gz").data
    free_truth = scale_free(truth, brain)
    means = {t: [] for t in TISSUES}
    nmae, gradient, jitter, noise, histograms = [], [], [], [], []
    familiar: dict[str, list[float]] = {}
    for site in sites:
        image = image_of(subject / f"{site}_T1w.nii.gz")
        for tissue, value in scale_free_tissue_means(image, brain, masks).items():
            means[tissue].append(value)
        histograms.append(normalized_histogram(image, brain))
        nmae.append(scale_fitted_nmae(image, truth, brain))
        gradient.append(gradient_correlation(image, truth, brain))
        try:
            jitter.append(slice_jitter(scale_free(image, brain), free_truth, masks["wm"]))
            noise.append(high_pass_noise(image, masks["wm"], brain))
        except InputError as error:
            raise InputError(f"{subject / 'wm_mask.nii.gz'}: {error}") from error
        for key, value in full_reference_scores(image, truth, brain).items():
            familiar.setdefault(key, []).append(value)
    scores = {f"cv_{t}": cross_site_cv(means[t]) for t in TISSUES}
    scores["wm_gm_spread"] = ratio_spread(np.divide(means["wm"], means["gm"]).tolist())
    scores["jsd"] = mean_pairwise_jsd(histograms)
    scores["nmae"] = float(np.mean(nmae))
    scores["gradient_corr"] = float(np.mean(gradient))
    scores["slice_jitter"] = float(np.mean(jitter))
    scores["noise_hf"] = float(np.mean(noise))
    scores |= {key: float(np.mean(values)) for key, values in familiar.items()}
    fidelity = {"nmae": nmae, "gradient_corr": gradient}
    per_site = {site: {k: fidelity[k][i] for k in PER_SITE_KEYS} for i, site in enumerate(sites)}
    return SubjectScores(scores, per_site, histograms)


def mean_per_site(scored: list[SubjectScores], sites: list[str]) -> SiteScores:
    """Each site's fidelity figures, averaged over the traveling subjects."""
    return {
        site: {
            key: float(np.mean([subject.per_site[site][key] for subject in scored]))
            for key in PER_SITE_KEYS
        }
        for site in sites
    }


def reference_sites(benchmark: Path) -> list[SiteFolder]:
    sites = discover_sites(benchmark / "sites")
    chosen = [site for site in sites if site.config.reference_contributor]
    return chosen or sites


def baseline_profile(benchmark: Path, bias_correction: Literal["none", "n4"]) -> ReferenceProfile:
    """A Nyúl profile from the reference sites' reference cases (local use: min 1 case)."""
    config = ProfileConfig(bias_correction=bias_correction, min_cases=1)
    cases = [
        case
        for site in reference_sites(benchmark)
        for case in load_reference_cases(site.reference_files, config)
    ]
    return site_profile(cases, config, "T1w")


def baseline_loaders(benchmark: Path) -> dict[str, Loader]:
    """One image function per classical baseline, each on the raw scan and its auto mask."""
    profiles = {
        "none": baseline_profile(benchmark, "none"),
        "n4": baseline_profile(benchmark, "n4"),
    }

    def loader(name: str, baseline: Baseline) -> Loader:
        profile = profiles["n4" if name.startswith("N4") else "none"]

        def image(path: Path) -> np.ndarray:
            volume = load_volume(path)
            return baseline(volume.data, foreground_mask(volume.data), volume.spacing, profile)

        return image

    return {name: loader(name, baseline) for name, baseline in BASELINES.items()}


def model_loader(
    model_dir: Path,
    out_dir: Path,
    scaled_sites: Collection[str] = (),
    landmark_dir: Path | None = None,
) -> Loader:
    """Harmonize with a model once, writing NIfTI outputs under ``out_dir``, then reuse them.

    Scans of ``scaled_sites`` go in only scaled (``--input-mapping scale``); the
    others are landmark-mapped and, with ``landmark_dir``, shared with that folder's
    loader so no scan is harmonized twice the same way.
    """
    artifact = load_artifact(model_dir)
    device = torch.device("cpu")

    def image(path: Path) -> np.ndarray:
        scaled = site_of_scan(path) in scaled_sites
        folder = out_dir if scaled or landmark_dir is None else landmark_dir
        target = folder / path.parent.name / path.name
        if not target.exists():
            mapping = "scale" if scaled else "landmarks"
            harmonize_file(artifact, ApplyJob(path, target), None, device, mapping)
        return load_volume(target).data

    return image


def site_of_scan(path: Path) -> str:
    """``site-a`` of a benchmark scan named ``site-a_T1w.nii.gz``."""
    return path.name.rsplit("_", 1)[0]


SCALED_SUFFIX = ", reference sites scaled"


def scaled_name(model: str) -> str:
    """The table's name for a model whose reference sites' scans went in only scaled."""
    return model + SCALED_SUFFIX


def model_loaders(
    models: Mapping[str, Path], out_dir: Path, scale_reference_sites: bool
) -> dict[str, Loader]:
    """One loader per model; with ``scale_reference_sites`` a scaled one right after each."""
    loaders = {}
    for name, path in models.items():
        if scale_reference_sites and scaled_name(name) in models:
            raise InputError(
                f"model name {scaled_name(name)!r} is taken by the scaled row; rename it"
            )
        loaders[name] = model_loader(path, out_dir / name)
        if scale_reference_sites:
            references = read_metadata(path).provenance.reference_sites
            loaders[scaled_name(name)] = model_loader(
                path, out_dir / f"{name}-scaled", references, out_dir / name
            )
    return loaders


def raw_loader(path: Path) -> np.ndarray:
    return load_volume(path).data


def evaluate_benchmark(
    benchmark: Path,
    models: Mapping[str, Path],
    out_dir: Path,
    *,
    baselines: bool = True,
    scale_reference_sites: bool = False,
) -> BenchmarkScores:
    """Metrics per method: raw, each model (harmonized into ``out_dir/<name>``), baselines.

    ``scale_reference_sites`` adds, right after each model, the same model with
    its reference sites' scans only scaled (see :func:`model_loader`).
    """
    sites = site_names(benchmark)
    subjects = sorted(p for p in (benchmark / "test").iterdir() if p.is_dir())
    if not subjects:
        raise InputError(f"{benchmark / 'test'}: no traveling subjects to evaluate on")
    loaders: dict[str, Loader] = {"raw": raw_loader}
    loaders |= model_loaders(models, out_dir, scale_reference_sites)
    if baselines:
        loaders |= baseline_loaders(benchmark)
    table, per_site = {}, {}
    for name, loader in tqdm(loaders.items(), desc="evaluating", unit="method", disable=None):
        scored = [score_subject(subject, sites, loader) for subject in subjects]
        rows = [subject.scores for subject in scored]
        table[name] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        per_site[name] = mean_per_site(scored, sites)
        if len(subjects) > 1:
            table[name]["site_acc"] = site_classifier_accuracy(
                np.array([h for subject in scored for h in subject.histograms]),
                sites * len(subjects),
                [subject.name for subject in subjects for _ in sites],
            )
    return BenchmarkScores(table, per_site)


def best_methods(table: Mapping[str, Mapping[str, float]], chance: float) -> dict[str, str]:
    """The best method per metric: lowest, highest, or (site classifier) nearest chance."""
    best = {}
    for key in next(iter(table.values())):
        direction = metric_info(key).direction
        if direction == "higher":
            best[key] = max(table, key=lambda m: table[m][key])
        elif direction == "chance":
            best[key] = min(table, key=lambda m: abs(table[m][key] - chance))
        else:
            best[key] = min(table, key=lambda m: table[m][key])
    return best


def format_table(table: Mapping[str, Mapping[str, float]], chance: float) -> str:
    """A markdown table, methods as rows, the best value of each metric in bold."""
    keys = ordered_keys(list(next(iter(table.values()))))
    best = best_methods(table, chance)
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for method, row in table.items():
        cells = [f"**{row[k]:.4f}**" if best[k] == method else f"{row[k]:.4f}" for k in keys]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
