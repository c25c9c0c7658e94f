"""A quick scorecard of a model on a phantom benchmark: raw scans against harmonized.

Harmonizes every traveling-subject scan under ``test/`` and reports, averaged
over subjects: the cross-site coefficient of variation of WM, GM and CSF means
(site effect; lower is better), the spread of the WM/GM ratio, the mean pairwise
histogram Jensen-Shannon divergence, a site classifier's leave-one-subject-out
accuracy (best at chance), the scale-fitted NMAE against the ground truth
(fidelity; lower is better) and the gradient-magnitude correlation with the
ground truth (anatomy kept; higher is better).

    python -m simulations.scorecard --model RUN/model --benchmark PHANTOMS [--out DIR]
"""

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from client.apply import ApplyJob, harmonize_file
from common.artifact import load_artifact
from common.input_mapping import map_volume_to_profile
from common.mask import foreground_mask
from common.metrics import (
    TISSUES,
    cross_site_cv,
    gradient_correlation,
    mean_pairwise_jsd,
    normalized_histogram,
    ratio_spread,
    scale_fitted_nmae,
    scale_free_tissue_means,
    site_classifier_accuracy,
)
from common.nifti import load_volume

Loader = Callable[[Path], np.ndarray]


def site_names(benchmark: Path) -> list[str]:
    return sorted(p.name for p in (benchmark / "sites").iterdir() if p.is_dir())


def score_subject(
    subject: Path, sites: list[str], image_of: Loader
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Metrics for one traveling subject, and its per-site histograms for the site classifier.

    ``image_of(path)`` gives the image to score.
    """
    brain = load_volume(subject / "brain_mask.nii.gz").data > 0.5
    masks = {t: load_volume(subject / f"{t}_mask.nii.gz").data > 0.5 for t in TISSUES}
    truth = load_volume(subject / "groundtruth_T1w.nii.gz").data
    means = {t: [] for t in TISSUES}
    nmae, gradient, histograms = [], [], []
    for site in sites:
        image = image_of(subject / f"{site}_T1w.nii.gz")
        for tissue, value in scale_free_tissue_means(image, brain, masks).items():
            means[tissue].append(value)
        histograms.append(normalized_histogram(image, brain))
        nmae.append(scale_fitted_nmae(image, truth, brain))
        gradient.append(gradient_correlation(image, truth, brain))
    scores = {f"cv_{t}": cross_site_cv(means[t]) for t in TISSUES}
    scores["wm_gm_spread"] = ratio_spread(np.divide(means["wm"], means["gm"]).tolist())
    scores["jsd"] = mean_pairwise_jsd(histograms)
    scores["nmae"] = float(np.mean(nmae))
    scores["gradient_corr"] = float(np.mean(gradient))
    return scores, histograms


def score_benchmark(model_dir: Path, benchmark: Path, out_dir: Path) -> dict[str, dict[str, float]]:
    artifact = load_artifact(model_dir)
    sites = site_names(benchmark)
    subjects = sorted(p for p in (benchmark / "test").iterdir() if p.is_dir())
    device = torch.device("cpu")

    def harmonized(path: Path) -> np.ndarray:
        target = out_dir / path.parent.name / path.name
        if not target.exists():
            harmonize_file(artifact, ApplyJob(path, target), None, device)
        return load_volume(target).data

    def raw(path: Path) -> np.ndarray:
        return load_volume(path).data

    def landmark_mapped(path: Path) -> np.ndarray:
        data = load_volume(path).data
        return map_volume_to_profile(data, foreground_mask(data), profile)

    profile = artifact.metadata.reference_profile
    table = {}
    methods = (("raw", raw), ("landmark map (Nyul)", landmark_mapped), ("harmonized", harmonized))
    for name, loader in methods:
        scored = [score_subject(subject, sites, loader) for subject in subjects]
        rows = [scores for scores, _ in scored]
        table[name] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        if len(subjects) > 1:
            table[name]["site_acc"] = site_classifier_accuracy(
                np.array([h for _, histograms in scored for h in histograms]),
                sites * len(subjects),
                [subject.name for subject in subjects for _ in sites],
            )
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    keys = list(next(iter(table.values())))
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for method, row in table.items():
        lines.append(f"| {method} | " + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--benchmark", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="where harmonized test scans go")
    args = parser.parse_args()
    out = args.out or args.model.parent / "harmonized"
    table = score_benchmark(args.model, args.benchmark, out)
    (out / "scorecard.json").write_text(json.dumps(table, indent=2))
    print(format_table(table))
    print(
        "lower is better for cv_*, wm_gm_spread, jsd and nmae; higher is better for "
        "gradient_corr; site_acc is best at chance (1 / number of sites)"
    )


if __name__ == "__main__":
    main()
