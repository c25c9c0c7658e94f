"""Evaluate, then write everything a reader needs: metrics.json, metrics_per_site.json,
metrics.md, report.html.

``fedharmonize evaluate`` and the end of ``fedharmonize simulate`` both come here,
so a federated run and a later re-evaluation produce the same folder.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.artifact import read_metadata
from common.errors import InputError
from server.round_log import METRICS_FILE
from simulations.evaluation import SiteScores, evaluate_benchmark, format_table, site_names
from simulations.report import ReportInputs, build_report


@dataclass(frozen=True)
class Assessment:
    table: dict[str, dict[str, float]]
    per_site: dict[str, SiteScores]
    markdown: str
    report: Path


def run_dir_of(model_dir: Path) -> Path | None:
    """The federated run a model came from (RUN/model -> RUN), when its round log is there."""
    parent = Path(model_dir).resolve().parent
    return parent if (parent / METRICS_FILE).exists() else None


def assess(
    benchmark: Path,
    models: Mapping[str, Path],
    out_dir: Path,
    *,
    baselines: bool = True,
    scale_reference_sites: bool = False,
) -> Assessment:
    """Score ``models`` (the first is the main one) and write the report into ``out_dir``."""
    for model in models.values():
        read_metadata(model)  # a wrong folder fails here, before any scan is harmonized
    if not (Path(benchmark) / "test").is_dir():
        raise InputError(f"{benchmark}: no test/ folder of traveling subjects (see phantoms)")
    out_dir = Path(out_dir)
    scores = evaluate_benchmark(
        benchmark, models, out_dir, baselines=baselines, scale_reference_sites=scale_reference_sites
    )
    table = scores.table
    chance = 1.0 / len(site_names(benchmark))
    markdown = format_table(table, chance)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
    (out_dir / "metrics_per_site.json").write_text(
        json.dumps(scores.per_site, indent=2), encoding="utf-8"
    )
    (out_dir / "metrics.md").write_text(markdown + "\n", encoding="utf-8")
    report = build_report(
        ReportInputs(
            benchmark=Path(benchmark),
            out_dir=out_dir,
            table=table,
            per_site=scores.per_site,
            harmonized={name: out_dir / name for name in models},
            model_dirs=dict(models),
            run_dir=run_dir_of(next(iter(models.values()))),
            chance=chance,
        )
    )
    return Assessment(table=table, per_site=scores.per_site, markdown=markdown, report=report)
