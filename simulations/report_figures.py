"""The report's figures, each drawn from numbers the evaluation or the run already has.

Figures are plain matplotlib (Agg, no display needed). Every function returns a
Figure or None when its data is absent (an evaluation without a federated run
has no training curves), so the report can say so instead of failing.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from common.atomic import write_atomically
from common.metrics import HISTOGRAM_BINS, HISTOGRAM_RANGE, normalized_histogram

PANEL_INCHES = 2.3
DPI = 110
WINDOW_PERCENTILE = 99.5


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write atomically, so a report folder never holds a half-written picture."""
    return write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))


def axial_level(brain: np.ndarray) -> int:
    """The axial slice 60 % up the brain, through the lateral ventricles."""
    levels = np.flatnonzero(brain.any(axis=(0, 1)))
    return int(levels[0] + 0.6 * (levels[-1] - levels[0]))


def display_window(image: np.ndarray, brain: np.ndarray) -> float:
    return float(np.percentile(image[brain], WINDOW_PERCENTILE)) or 1.0


def montage_figure(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    column_titles: Sequence[str],
    brain: np.ndarray,
) -> Figure:
    """One axial slice per panel: a row per kind of image, a column per site.

    Each panel is windowed on its own brain intensities (0 to the 99.5th
    percentile): scanners' gains are arbitrary, so what should look alike in a
    harmonized row is contrast, shading, sharpness and noise.
    """
    level = axial_level(brain)
    columns = max(len(images) for _, images in rows)
    figure = new_figure(columns * PANEL_INCHES, len(rows) * PANEL_INCHES * 1.15)
    grid = figure.subplots(len(rows), columns, squeeze=False)
    for row, (label, images) in enumerate(rows):
        for column in range(columns):
            axis = grid[row][column]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if column >= len(images):
                continue
            image = images[column]
            # RAS axial slice (X, Y) shown with anterior up and the patient's left on the right
            axis.imshow(
                np.rot90(image[:, :, level]),
                cmap="gray",
                vmin=0.0,
                vmax=display_window(image, brain),
                interpolation="nearest",
            )
            if row == 0:
                axis.set_title(column_titles[column], fontsize=10)
            if column == 0:
                axis.set_ylabel(label, fontsize=10)
    return figure


def histogram_figure(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray]]], brain: np.ndarray
) -> Figure:
    """Brain intensity histograms, one line per site, one panel per method.

    Intensities are scale-free (0 = the darkest brain voxels, 1 = the brain
    median), so methods with different units share an axis; harmonized sites
    should draw one line on top of another.
    """
    centres = np.linspace(*HISTOGRAM_RANGE, HISTOGRAM_BINS + 1)
    centres = 0.5 * (centres[1:] + centres[:-1])
    figure = new_figure(4.2 * len(panels), 3.2)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (title, images) in zip(axes, panels, strict=True):
        for site, image in images.items():
            axis.plot(centres, normalized_histogram(image, brain), label=site, linewidth=1.4)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("intensity (scale-free: brain median = 1)")
        axis.set_xlim(*HISTOGRAM_RANGE)
    axes[0].set_ylabel("share of brain voxels")
    axes[0].legend(fontsize=8)
    return figure


def training_figure(round_log: Sequence[Mapping]) -> Figure | None:
    """Training loss and held-out loss per round, aggregated (black) and per site.

    Where the log holds the reference sites' own average, it is drawn dashed: a
    non-reference site's held-out target is its own scan, so the all-site line
    can rise while the model comes closer to the reference contrast.
    """
    phases = [("train", "train-loss", "training loss"), ("evaluate", "loss", "held-out loss")]
    present = [p for p in phases if any(e["phase"] == p[0] for e in round_log)]
    if not present:
        return None
    figure = new_figure(4.2 * len(present), 3.2)
    axes = figure.subplots(1, len(present), squeeze=False)[0]
    for axis, (phase, key, title) in zip(axes, present, strict=True):
        entries = [e for e in round_log if e["phase"] == phase]
        rounds = [e["round"] for e in entries]
        sites = sorted({site for e in entries for site in e["sites"]})
        for site in sites:
            values = [e["sites"].get(site, {}).get(key, np.nan) for e in entries]
            axis.plot(rounds, values, marker="o", linewidth=1.2, label=site)
        overall = [e["aggregate"].get(key, np.nan) for e in entries]
        axis.plot(rounds, overall, color="black", marker="s", linewidth=2.0, label="all sites")
        if any("reference" in e for e in entries):
            reference = [e.get("reference", {}).get(key, np.nan) for e in entries]
            axis.plot(
                rounds,
                reference,
                color="black",
                linestyle="--",
                marker="^",
                label="reference sites",
            )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("round")
        axis.set_xticks(rounds)
        axis.set_ylabel("loss (lower is better)")
    axes[0].legend(fontsize=8)
    return figure


def sent_per_round(entries: Sequence[Mapping]) -> dict[int, int]:
    """Bytes one site sent in each round, summed over its messages (ledger entries)."""
    sent: dict[int, int] = {}
    for entry in entries:
        sent[int(entry["round"])] = sent.get(int(entry["round"]), 0) + int(entry["bytes"])
    return sent


def traffic_figure(ledgers: Mapping[str, Sequence[Mapping]]) -> Figure | None:
    """Bytes each site sent per round, from its own ledger, as grouped bars."""
    if not any(ledgers.values()):
        return None
    rounds = sorted({int(e["round"]) for entries in ledgers.values() for e in entries})
    sites = sorted(ledgers)
    width = 0.8 / len(sites)
    figure = new_figure(min(9.0, max(4.5, 0.35 * len(rounds) * len(sites) + 2.0)), 3.0)
    axis = figure.subplots()
    positions = np.arange(len(rounds))
    for index, site in enumerate(sites):
        sent = sent_per_round(ledgers[site])
        kilobytes = [sent.get(r, 0) / 1024 for r in rounds]
        axis.bar(positions + (index - (len(sites) - 1) / 2) * width, kilobytes, width, label=site)
    axis.set_xticks(positions, [str(r) for r in rounds])
    axis.set_xlabel("round (0 = reference profiles, then model weights)")
    axis.set_ylabel("kilobytes sent")
    axis.set_yscale("log")
    axis.legend(fontsize=8)
    return figure
