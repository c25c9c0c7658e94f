"""What each evaluation metric means, which direction is better, and which are headline.

One catalogue feeds the markdown table, the HTML report and ``evaluate --help``,
so a metric is explained the same way everywhere.
"""

from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher", "chance"]


@dataclass(frozen=True)
class MetricInfo:
    label: str
    direction: Direction
    meaning: str
    headline: bool = True


METRICS: dict[str, MetricInfo] = {
    "cv_wm": MetricInfo(
        "WM mean, cross-site CV",
        "lower",
        "how much the white-matter brightness of the same person differs between hospitals",
    ),
    "cv_gm": MetricInfo("GM mean, cross-site CV", "lower", "the same for grey matter"),
    "cv_csf": MetricInfo("CSF mean, cross-site CV", "lower", "the same for cerebrospinal fluid"),
    "wm_gm_spread": MetricInfo(
        "WM/GM contrast, cross-site spread",
        "lower",
        "how much grey-white contrast differs between hospitals",
    ),
    "jsd": MetricInfo(
        "histogram divergence (JSD)",
        "lower",
        "how different the brain intensity histograms of the hospitals are",
    ),
    "site_acc": MetricInfo(
        "site classifier accuracy",
        "chance",
        "how often a classifier guesses the hospital from the histogram; best at chance",
    ),
    "nmae": MetricInfo(
        "error vs ground truth (NMAE)",
        "lower",
        "mean absolute difference from the true anatomy after one brightness scale fit",
    ),
    "gradient_corr": MetricInfo(
        "edge agreement with ground truth",
        "higher",
        "correlation of edge strength with the true anatomy: edges kept, none invented",
    ),
    "slice_jitter": MetricInfo(
        "slice-to-slice jitter (WM)",
        "lower",
        "how much white-matter brightness jumps between neighbouring axial slices beyond "
        "what the anatomy does",
    ),
    "noise_hf": MetricInfo(
        "high-pass noise proxy (WM)",
        "lower",
        "how grainy the white matter is: fine voxel-to-voxel variation left after light "
        "smoothing; blurring also lowers it, so read it beside edge agreement",
        headline=False,
    ),
    "haarpsi": MetricInfo(
        "HaarPSI vs ground truth",
        "higher",
        "perceptual similarity to the true anatomy (ranked above SSIM for MRI)",
        headline=False,
    ),
    "ssim": MetricInfo(
        "SSIM vs ground truth",
        "higher",
        "structural similarity; familiar, but known to mislead on medical images",
        headline=False,
    ),
    "psnr": MetricInfo(
        "PSNR vs ground truth (dB)",
        "higher",
        "peak signal-to-noise ratio; familiar, but known to mislead on medical images",
        headline=False,
    ),
}


def metric_info(key: str) -> MetricInfo:
    """The catalogue entry, or a neutral one for a metric the catalogue does not know."""
    return METRICS.get(key, MetricInfo(key, "lower", key, headline=False))


def ordered_keys(keys: list[str]) -> list[str]:
    """Catalogue order first (headline metrics, then the secondary ones), unknown keys last."""
    known = [k for k in METRICS if k in keys]
    return known + [k for k in keys if k not in METRICS]
