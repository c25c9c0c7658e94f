"""report.html: the evidence a consortium reads before it trusts a harmonizer.

One self-contained HTML file (pictures embedded as data URIs, no scripts, no
external links) plus the same pictures as PNGs beside it. Every figure has a
caption written for a radiologist who has never heard of Flower: what it
shows and which direction is better.
"""

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.artifact import ArtifactMetadata, Provenance, read_metadata
from common.atomic import write_atomically
from common.configs.model import UNetConfig
from common.model import trainable_shapes
from common.nifti import load_volume
from common.target_denoising import share_scaled_weight
from server.round_log import read_round_log
from simulations.baselines import BASELINES
from simulations.evaluation import PER_SITE_KEYS, SCALED_SUFFIX, best_methods, site_names
from simulations.metric_catalogue import metric_info, ordered_keys
from simulations.report_figures import (
    histogram_figure,
    montage_figure,
    save_png,
    traffic_figure,
    training_figure,
)

REPORT_FILE = "report.html"
MAX_IMAGE_ROWS = 4  # raw + up to three models in the montage and histograms

SECTIONS = ("summary", "montage", "histograms", "metrics", "training", "traffic")


@dataclass(frozen=True)
class ReportInputs:
    """What the report is built from; every path is read, none is written but ``out_dir``."""

    benchmark: Path
    out_dir: Path
    table: Mapping[str, Mapping[str, float]]
    harmonized: Mapping[str, Path]  # model name -> folder of its harmonized scans
    model_dirs: Mapping[str, Path]  # model name -> RUN/model
    run_dir: Path | None  # the federated run (round log, ledgers), when there is one
    chance: float
    per_site: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)


def read_ledgers(run_dir: Path | None) -> dict[str, list[dict]]:
    folder = Path(run_dir) / "ledger" if run_dir else None
    if folder is None or not folder.is_dir():
        return {}
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def embedded(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def figure_block(path: Path | None, alt: str, caption: str) -> str:
    if path is None:
        return f'<p class="missing">{html.escape(caption)}</p>'
    return f"<figure>{embedded(path, alt)}<figcaption>{caption}</figcaption></figure>"


def first_subject(benchmark: Path) -> Path:
    return sorted(p for p in (benchmark / "test").iterdir() if p.is_dir())[0]


@dataclass(frozen=True)
class Showcase:
    """The traveling subject the pictures show, loaded once for every figure."""

    subject: Path
    sites: list[str]
    brain: np.ndarray
    truth: np.ndarray
    images: dict[str, dict[str, np.ndarray]]  # "raw" and each model, then per site


def load_showcase(inputs: ReportInputs) -> Showcase:
    """Raw and harmonized scans of the first traveling subject, with its mask and truth."""
    subject = first_subject(inputs.benchmark)
    sites = site_names(inputs.benchmark)
    images = {"raw": {s: load_volume(subject / f"{s}_T1w.nii.gz").data for s in sites}}
    for name, folder in list(inputs.harmonized.items())[: MAX_IMAGE_ROWS - 1]:
        scans = folder / subject.name
        images[name] = {s: load_volume(scans / f"{s}_T1w.nii.gz").data for s in sites}
    return Showcase(
        subject=subject,
        sites=sites,
        brain=load_volume(subject / "brain_mask.nii.gz").data > 0.5,
        truth=load_volume(subject / "groundtruth_T1w.nii.gz").data,
        images=images,
    )


def montage_section(inputs: ReportInputs, show: Showcase) -> str:
    rows = [
        ("raw scan" if name == "raw" else f"harmonized:\n{name}", [*per_site.values(), show.truth])
        for name, per_site in show.images.items()
    ]
    figure = montage_figure(rows, [*show.sites, "ground truth"], show.brain)
    path = save_png(figure, inputs.out_dir / "montage.png")
    caption = (
        f"The same person ({html.escape(show.subject.name)}) scanned at every hospital. Top "
        "row: the scans as acquired; each lower row: the same scans after harmonization. The "
        "last column is the true anatomy in the reference contrast. <b>Better:</b> a harmonized "
        "row whose panels look alike and look like the ground truth, with the same edges and "
        "no new structures. Each panel is windowed on its own brain, so brightness differences "
        "are hidden and contrast, shading, blur and noise are what you compare."
    )
    return figure_block(path, "montage of one subject at every site", caption)


def histogram_section(inputs: ReportInputs, show: Showcase) -> str:
    panels = [
        ("before (raw scans)" if name == "raw" else f"after: {name}", per_site)
        for name, per_site in show.images.items()
    ]
    path = save_png(histogram_figure(panels, show.brain), inputs.out_dir / "histograms.png")
    caption = (
        "Brain intensity histograms of the same person, one line per hospital. The peaks are "
        "CSF (left), grey matter and white matter (right). <b>Better:</b> the lines of the "
        "hospitals lie on top of each other after harmonization."
    )
    return figure_block(path, "intensity histograms per site", caption)


def cell(value: float, best: float) -> str:
    """A table cell, starred when it shows the same figure as the best (ties shown alike)."""
    text = f"{value:.4f}"
    return f'<td class="best">{text} &#9733;</td>' if text == f"{best:.4f}" else f"<td>{text}</td>"


def row_cells(table: Mapping[str, Mapping[str, float]], best: Mapping[str, str], key: str) -> str:
    """One metric's cells across the methods of ``table``, the best (per ``best``) starred."""
    top = table[best[key]][key]
    return "".join(cell(row[key], top) for row in table.values())


def metrics_table(table: Mapping[str, Mapping[str, float]], chance: float) -> str:
    """Metrics as rows, methods as columns, the best value per row starred (all that show it)."""
    methods = list(table)
    keys = ordered_keys(list(next(iter(table.values()))))
    best = best_methods(table, chance)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    lines = [f"<table><tr><th>metric</th><th>better</th>{head}</tr>"]
    headline_done = False
    for key in keys:
        info = metric_info(key)
        if not info.headline and not headline_done:
            headline_done = True
            lines.append(
                f'<tr><td colspan="{len(methods) + 2}" class="group">Secondary scores, for '
                "comparison only: the noise proxy also falls when an image is blurred, and the "
                "familiar image-quality scores reward smooth images and can miss changed "
                "anatomy</td></tr>"
            )
        better = {"lower": "lower", "higher": "higher", "chance": f"near {chance:.2f}"}
        lines.append(
            f'<tr><td title="{html.escape(info.meaning)}">{html.escape(info.label)}</td>'
            f"<td>{better[info.direction]}</td>{row_cells(table, best, key)}</tr>"
        )
    lines.append("</table>")
    legend = "".join(
        f"<li><b>{html.escape(metric_info(k).label)}</b>: {html.escape(metric_info(k).meaning)}"
        f" ({metric_info(k).direction} is better)</li>"
        for k in keys
    )
    shifted = [m for m in ("z-score", "WhiteStripe") if m in table]
    footnote = (
        f"<p class='legend'>{html.escape(' and '.join(shifted))} move the zero of the intensity "
        "scale on purpose (tissue is centred on 0), and a fit of one brightness scale cannot "
        "undo that, so their rows against the ground truth are not comparable. Their "
        "hospital-effect rows equal the raw scans' because they only rescale each scan, "
        "which these scale-free measures ignore.</p>"
        if shifted
        else ""
    )
    if any(method.endswith(SCALED_SUFFIX) for method in table):
        footnote += (
            f"<p class='legend'>'{html.escape(SCALED_SUFFIX.lstrip(', '))}': the same model, "
            "with the reference sites' scans only scaled instead of landmark-mapped, as a site "
            "that scans with the reference protocol would apply it (apply --input-mapping "
            "scale). Their error and edges come closer to the truth; the hospital-effect rows "
            "can rise, because the other sites' scans keep the landmark map's bend.</p>"
        )
    return "\n".join(lines) + f"<ul class='legend'>{legend}</ul>" + footnote


def per_site_table(per_site: Mapping[str, Mapping[str, Mapping[str, float]]], chance: float) -> str:
    """Error and edge agreement split by hospital: methods as columns, best starred per row."""
    if not per_site:
        return ""
    methods = list(per_site)
    sites = list(next(iter(per_site.values())))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    lines = [
        "<p>The same two anatomy rows, split by hospital and averaged over the traveling "
        "subjects. A method can win on the mean over hospitals while it serves one "
        "hospital's scans worse; that hospital's row shows it.</p>",
        f"<table><tr><th>hospital</th><th>metric</th><th>better</th>{head}</tr>",
    ]
    for site in sites:
        row = {m: per_site[m][site] for m in methods}
        best = best_methods(row, chance)
        for key in PER_SITE_KEYS:
            info = metric_info(key)
            lines.append(
                f"<tr><td>{html.escape(site)}</td><td>{html.escape(info.label)}</td>"
                f"<td>{info.direction}</td>{row_cells(row, best, key)}</tr>"
            )
    lines.append("</table>")
    return "\n".join(lines)


def summary_section(inputs: ReportInputs) -> str:
    """Provenance of the main model and a plain verdict against the best classical pipeline."""
    table = inputs.table
    models = [m for m in table if m in inputs.model_dirs]
    classical = [m for m in table if m in BASELINES]
    lines = []
    if models:
        main = models[0]
        metadata = read_metadata(inputs.model_dirs[main])
        provenance = metadata.provenance
        lines.append(
            f"<p>Main model: <b>{html.escape(main)}</b>, trained in {provenance.mode} mode over "
            f"{len(provenance.sites)} site(s) ({html.escape(', '.join(provenance.sites))}); "
            f"reference contrast from {html.escape(', '.join(provenance.reference_sites))}; "
            f"{provenance.rounds} round(s); created {html.escape(provenance.created)}.</p>"
        )
        lines.append(architecture_sentence(metadata.architecture))
        lines.append(target_policy(metadata))
        if classical:
            lines.append(verdict(table, main, classical))
    subjects = sorted(p.name for p in (inputs.benchmark / "test").iterdir() if p.is_dir())
    lines.append(
        f"<p>Benchmark: {len(subjects)} traveling subject(s) scanned at every site; "
        f"metrics are averaged over them. Chance for the site classifier: {inputs.chance:.2f}.</p>"
    )
    return "\n".join(lines)


def architecture_sentence(architecture: UNetConfig) -> str:
    """The network's size in plain words, so that two reports can be told apart by it."""
    parameters = sum(int(np.prod(shape)) for shape in trainable_shapes(architecture))
    slices = (
        "one axial slice as input"
        if architecture.in_channels == 1
        else f"{architecture.in_channels} neighbouring axial slices as input (2.5D)"
    )
    return (
        f"<p>Network: a 2D U-Net with {architecture.depth} downsamplings ([model] depth), "
        f"{architecture.base_channels} channels at full resolution, {slices}; "
        f"{parameters / 1e6:.2f} M parameters.</p>"
    )


def _pseudo_target_recipe(count: int, denoise: float) -> str:
    """How a pseudo-target was made: 'one pass of the global model', 'N passes ...', denoising."""
    made = "one pass of the global model" if count == 1 else f"{count} passes of the global model"
    return made if denoise <= 0 else f"{made}, then total-variation denoising at weight {denoise:g}"


def _denoise_used(training: dict, provenance: Provenance) -> tuple[float, str]:
    """The denoising weight the model trained with, and why when the share set it.

    Models since the share rule record the weight they used; older ones are
    read from their counts and settings (fixed when they predate the rule).
    """
    configured = float(training.get("pseudo_target_denoise", 0.0))
    reference, total = provenance.reference_training_cases, provenance.training_cases
    follows = training.get("pseudo_target_denoise_follows_share", False)  # older models: fixed
    recorded = provenance.pseudo_target_denoise_used
    if not follows or configured <= 0 or reference is None or total is None:
        return (configured if recorded is None else recorded), ""
    used = share_scaled_weight(configured, reference, total) if recorded is None else recorded
    cases = f"{reference} of the {total} training cases"
    if used == configured:
        return used, f"; denoising in full because the reference sites hold {cases}"
    return used, (
        f"; the configured denoising weight {configured:g} became {used:g} because the "
        f"reference sites hold only {cases}"
    )


def target_policy(metadata: ArtifactMetadata) -> str:
    """Which way of preparing training targets the main model used, in plain words."""
    provenance = metadata.provenance
    settings = provenance.settings
    training = settings.get("training", {}) if isinstance(settings, dict) else {}
    profile = settings.get("profile", {}) if isinstance(settings, dict) else {}
    if not training:
        return "<p>Training targets: not recorded in this model.</p>"
    mode = training.get("non_reference_targets", "full")
    only_reference = provenance.training_cases is not None and (
        provenance.reference_training_cases == provenance.training_cases
    )
    if only_reference:  # e.g. the reference site alone: no foreign targets to prepare
        sites = "every training case came from a reference site and was its own target"
    elif mode == "coarse":
        sites = (
            "sites outside the reference contrast taught contrast, shading and anatomy only "
            f"(their loss compared images blurred by {training.get('coarse_sigma')} px), with "
            f"influence {training.get('non_reference_weight', 1.0)}"
        )
    elif mode == "pseudo":
        denoise, why = _denoise_used(training, provenance)
        made = _pseudo_target_recipe(training.get("pseudo_target_passes", 1), denoise)
        sites = (
            "sites outside the reference contrast taught contrast, shading and anatomy in the "
            "first round; from the second round, the global model's harmonization of their own "
            f"cases ({made}) became their targets "
            "(progressive pseudo-targets), anchored by the reference sites; influence "
            f"{training.get('non_reference_weight', 1.0)}{why}"
        )
    else:
        sites = "every site's targets taught everything, fine texture included"
    share = training.get("non_reference_share", 1.0)
    if share < 1.0 and not only_reference:
        sites += f"; each trained on {share:.0%} of its slices per round"
    optimizer_clause = ""  # only a federated model has rounds to keep it between
    if provenance.mode == "federated":
        kept = training.get("keep_optimizer_state", False)
        optimizer_clause = "; site optimizer state: " + (
            "kept on each site's disk between rounds" if kept else "restarted every round"
        )
    correction = profile.get("bias_correction", "none")
    spectrum = "on" if profile.get("match_sharpness") else "off"
    return (
        f"<p>Training targets: {html.escape(sites)}; bias correction of targets and of "
        f"inputs: {html.escape(str(correction))}; k-space spectrum matching of targets: "
        f"{spectrum}{optimizer_clause}.</p>"
    )


def verdict(table: Mapping[str, Mapping[str, float]], main: str, classical: Sequence[str]) -> str:
    """One sentence per headline question: is the site effect gone, is the anatomy kept."""
    checks = [("cv_wm", "white-matter cross-site CV"), ("nmae", "error against ground truth")]
    checks += [("gradient_corr", "edge agreement with ground truth")]
    items = []
    for key, label in checks:
        direction = metric_info(key).direction
        pick = max if direction == "higher" else min
        rival = pick(classical, key=lambda m: table[m][key])
        ours, theirs = table[main][key], table[rival][key]
        wins = ours > theirs if direction == "higher" else ours < theirs
        word = "beats" if wins else "does not beat"
        items.append(
            f"<li>{html.escape(label)}: {html.escape(main)} {word} the best classical method "
            f"({html.escape(rival)}): {ours:.4f} against {theirs:.4f}.</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def training_section(inputs: ReportInputs) -> str:
    round_log = read_round_log(inputs.run_dir) if inputs.run_dir else []
    figure = training_figure(round_log)
    if figure is None:
        caption = "No federated round log was found beside the model, so there are no curves."
        return figure_block(None, "training curves per round and site", caption)
    path = save_png(figure, inputs.out_dir / "training.png")
    caption = (
        "How the federated training went. Left: the loss each hospital reached on its own "
        "data in each round (black: all hospitals together). Right: the loss on slices each "
        "hospital kept aside, measured against its own scans. "
    )
    if any("reference" in entry for entry in round_log):
        caption += (
            "<b>Better:</b> the dashed line (the reference hospitals alone) going down. A "
            "hospital outside the reference protocol is measured against its own scanner's "
            "look, which a good harmonizer stops copying, so its curve, and the black one "
            "with it, may rise while the model improves."
        )
    else:
        caption += (
            "<b>Better:</b> curves going down and ending close together; a hospital far above "
            "the others is learning something the rest cannot teach it."
        )
    return figure_block(path, "training curves per round and site", caption)


def traffic_section(inputs: ReportInputs) -> str:
    ledgers = read_ledgers(inputs.run_dir)
    figure = traffic_figure(ledgers)
    path = save_png(figure, inputs.out_dir / "traffic.png") if figure else None
    if path is None:
        return figure_block(None, "", "No site ledgers were found beside the model.")
    caption = (
        "What left each hospital, per round, as written by the hospital's own ledger before "
        "anything was sent. Round 0 carries intensity statistics (a reference profile: "
        "percentiles, no images); every later round carries model weights and a few numbers. "
        "<b>Expected:</b> the same size for every hospital in every training round."
    )
    rows = []
    for site, entries in ledgers.items():
        kinds = sorted({k for e in entries for k in e.get("records", {})})
        total = sum(int(e["bytes"]) for e in entries)
        rows.append(
            f"<tr><td>{html.escape(site)}</td><td>{len(entries)}</td>"
            f"<td>{total / 1024**2:.2f}</td><td>{html.escape(', '.join(kinds))}</td></tr>"
        )
    table = (
        "<table><tr><th>site</th><th>messages sent</th><th>MiB in all</th>"
        "<th>kinds of content</th></tr>" + "".join(rows) + "</table>"
    )
    return figure_block(path, "bytes sent per round and site", caption) + table


STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: 0.95em; color: #333; max-width: 900px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
td.best { font-weight: bold; background: #e6f4e6; }
td.group { text-align: left; font-style: italic; background: #f4f4f4; }
.missing { font-style: italic; color: #666; } .legend { font-size: 0.9em; }
"""


def build_report(inputs: ReportInputs) -> Path:
    """Write every figure and ``report.html`` into ``inputs.out_dir``; return the HTML path."""
    out = Path(inputs.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    show = load_showcase(inputs)
    body = {
        "summary": ("Summary", summary_section(inputs)),
        "montage": ("One person at every hospital", montage_section(inputs, show)),
        "histograms": ("Intensity histograms before and after", histogram_section(inputs, show)),
        "metrics": (
            "Every method side by side",
            "<p>Each row is one question; the best method per row is starred. Headline rows "
            "ask whether the hospital effect is gone (top) and whether the anatomy is kept "
            "(error, edges).</p>"
            + metrics_table(inputs.table, inputs.chance)
            + per_site_table(inputs.per_site, inputs.chance),
        ),
        "training": ("Training, round by round", training_section(inputs)),
        "traffic": ("What each hospital sent", traffic_section(inputs)),
    }
    sections = "\n".join(
        f'<section id="{key}"><h2>{title}</h2>\n{content}</section>'
        for key, (title, content) in body.items()
    )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>fedharmonize report</title><style>{STYLE}</style></head><body>"
        "<h1>fedharmonize: harmonization report</h1>\n"
        f"{sections}\n</body></html>\n"
    )
    return write_atomically(
        out / REPORT_FILE, lambda temporary: Path(temporary).write_text(document, encoding="utf-8")
    )
