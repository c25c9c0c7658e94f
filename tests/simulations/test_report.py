"""The HTML report: every section from a tiny run, honest fallbacks, stars on the best."""

import json
from pathlib import Path
from typing import Any

import pytest

from common.artifact import Provenance, save_artifact
from common.configs.model import UNetConfig
from common.configs.profile import ProfileConfig
from common.model import build_model
from common.sites import read_site
from common.targets import load_reference_cases, site_profile
from simulations.assessment import assess
from simulations.report import (
    SECTIONS,
    ReportInputs,
    metrics_table,
    per_site_table,
    training_section,
    verdict,
)
from simulations.report_figures import sent_per_round, training_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_model(folder: Path, benchmark: Path, reference_site: str) -> Path:
    """An untrained tiny harmonizer with the reference site's profile, saved like a run's."""
    config = ProfileConfig(bias_correction="none", min_cases=1)
    reference = read_site(benchmark / "sites" / reference_site)
    profile = site_profile(load_reference_cases(reference.reference_files, config), config, "T1w")
    provenance = Provenance(
        mode="federated",
        sites=("site-a", "site-b", "site-c"),
        reference_sites=("site-a",),
        rounds=2,
    )
    model = build_model(UNetConfig(base_channels=8, depth=2), 0)
    save_artifact(folder / "model", model, profile, provenance)
    return folder / "model"


def write_round_log_and_ledgers(run: Path) -> None:
    sites = ["site-a", "site-b", "site-c"]
    lines = []
    for round_number in (1, 2):
        per_site = {s: {"train-loss": 0.1 / round_number, "num-examples": 10.0} for s in sites}
        lines.append(
            {
                "round": round_number,
                "phase": "train",
                "sites": per_site,
                "aggregate": {"train-loss": 0.1 / round_number},
            }
        )
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    (run / "ledger").mkdir()
    for site in sites:
        entries = [
            {
                "round": r,
                "bytes": 1000 * (r + 1),
                "message_type": "train",
                "records": {"arrays": {}, "metrics": {}},
            }
            for r in (0, 1, 2)
        ]
        (run / "ledger" / f"{site}.jsonl").write_text("\n".join(map(json.dumps, entries)))


@pytest.mark.slow
def test_report_of_a_tiny_run_has_every_section_and_its_figures(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    benchmark, manifest = phantom_folder
    run = tmp_path / "run"
    model = write_model(run, benchmark, manifest["reference_site"])
    write_round_log_and_ledgers(run)

    result = assess(benchmark, {"federated": model}, run / "report", baselines=False)

    page = result.report.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") == 4
    for name in ("montage", "histograms", "training", "traffic"):
        assert (run / "report" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    assert "federated mode over 3 site(s)" in page
    assert "Network: a 2D U-Net with 2 downsamplings ([model] depth), 8 channels" in page
    assert "Training targets: not recorded" in page  # this test model has no settings
    assert page.count("&#9733;") >= len(result.table["raw"])  # a star in every metric row
    assert "<script" not in page and "http" not in page  # self-contained, nothing fetched
    assert json.loads((run / "report" / "metrics.json").read_text()) == result.table
    per_site = json.loads((run / "report" / "metrics_per_site.json").read_text())
    assert per_site == result.per_site and sorted(per_site) == ["federated", "raw"]
    for site in manifest["sites"]:  # error and edges, one row each per hospital
        assert page.count(f"<tr><td>{site}</td><td>error vs ground truth") == 1
        assert page.count(f"<tr><td>{site}</td><td>edge agreement") == 1


@pytest.mark.slow
def test_report_without_a_run_folder_says_what_is_missing(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    benchmark, manifest = phantom_folder
    model = write_model(tmp_path / "loose", benchmark, manifest["reference_site"])

    result = assess(benchmark, {"federated": model}, tmp_path / "out", baselines=False)

    page = result.report.read_text()
    assert "No federated round log" in page and "No site ledgers" in page
    assert page.count("data:image/png;base64,") == 2
    assert not (tmp_path / "out" / "training.png").exists()


def test_per_site_table_stars_each_hospitals_best_in_the_right_direction() -> None:
    per_site = {
        "raw": {
            "site-a": {"nmae": 0.10, "gradient_corr": 0.95},
            "site-b": {"nmae": 0.20, "gradient_corr": 0.70},
        },
        "model": {
            "site-a": {"nmae": 0.12, "gradient_corr": 0.93},
            "site-b": {"nmae": 0.15, "gradient_corr": 0.80},
        },
    }

    rows = per_site_table(per_site, chance=1 / 3).split("</tr>")

    def row(site: str, label: str) -> str:
        return next(r for r in rows if f"<td>{site}</td>" in r and label in r)

    assert '<td class="best">0.1000 &#9733;</td>' in row("site-a", "error")
    assert '<td class="best">0.9500 &#9733;</td>' in row("site-a", "edge agreement")
    assert '<td class="best">0.1500 &#9733;</td>' in row("site-b", "error")
    assert '<td class="best">0.8000 &#9733;</td>' in row("site-b", "edge agreement")
    assert (
        per_site_table({}, chance=1 / 3) == ""
    )  # an old caller without per-site figures gets no table


def test_figures_that_show_alike_are_starred_alike() -> None:
    # z-score only rescales, so its edges equal the raw scan's up to float rounding
    edges = {"raw": 0.99460001, "z-score": 0.99460004, "model": 0.9898}
    per_site = {m: {"site-a": {"nmae": 0.1, "gradient_corr": v}} for m, v in edges.items()}

    edge_row = next(r for r in per_site_table(per_site, chance=1 / 3).split("</tr>") if "edge" in r)

    assert edge_row.count("&#9733;") == 2 and "0.9898 &#9733;" not in edge_row


def test_metrics_table_stars_lowest_highest_and_nearest_chance() -> None:
    table = {
        "raw": {"cv_wm": 0.10, "gradient_corr": 0.90, "site_acc": 1.00},
        "model": {"cv_wm": 0.05, "gradient_corr": 0.80, "site_acc": 0.40},
    }

    rows = metrics_table(table, chance=1 / 3).split("</tr>")

    cv_row = next(r for r in rows if "WM mean" in r)
    gradient_row = next(r for r in rows if "edge agreement" in r)
    site_row = next(r for r in rows if "site classifier" in r)
    assert '<td class="best">0.0500 &#9733;</td>' in cv_row
    assert '<td class="best">0.9000 &#9733;</td>' in gradient_row
    assert '<td class="best">0.4000 &#9733;</td>' in site_row


def test_tied_best_values_are_all_starred() -> None:
    table = {"Nyul": {"site_acc": 0.5}, "model": {"site_acc": 0.5}, "raw": {"site_acc": 1.0}}

    text = metrics_table(table, chance=1 / 3)

    assert text.count("&#9733;") == 2


def _policy_text(
    cases: tuple[int, int] | None = None,
    used: float | None = None,
    mode: str = "federated",
    **training: object,
) -> str:
    from common.configs.settings import HarmonizerSettings
    from simulations.report import target_policy

    chosen = HarmonizerSettings().with_overrides("training", **training)
    reference, total = cases or (None, None)
    provenance = Provenance(
        mode=mode,
        sites=("a", "b"),
        reference_sites=("a",),
        rounds=1,
        settings=json.loads(chosen.model_dump_json()),
        training_cases=total,
        reference_training_cases=reference,
        pseudo_target_denoise_used=used,
    )
    return target_policy(type("Metadata", (), {"provenance": provenance})())


def test_the_target_policy_is_stated_in_plain_words():
    default = _policy_text()
    coarse = _policy_text(non_reference_targets="coarse", keep_optimizer_state=False)

    assert "progressive pseudo-targets" in default
    assert "site optimizer state: kept on each site's disk" in default
    assert "bias correction of targets and of inputs: n4" in default
    assert "contrast, shading and anatomy only" in coarse and "blurred by 2.0 px" in coarse
    assert "site optimizer state: restarted every round" in coarse
    assert "each trained on 25% of its slices per round" in default
    assert "of its slices per round" not in _policy_text(non_reference_share=1.0)
    assert "own cases (2 passes of the global model, then" in default
    assert "(one pass of the global model)" in _policy_text(
        pseudo_target_passes=1, pseudo_target_denoise=0.0
    )
    assert "then total-variation denoising at weight 0.04" in default


def test_the_report_states_the_network_size_so_two_runs_can_be_told_apart():
    from common.configs.model import UNetConfig
    from common.model import HarmonizerUNet, count_parameters
    from simulations.report import architecture_sentence

    default, deeper = UNetConfig(), UNetConfig(depth=4, in_channels=3)

    small, large = architecture_sentence(default), architecture_sentence(deeper)

    assert "3 downsamplings" in small and "one axial slice as input" in small
    assert "4 downsamplings" in large and "3 neighbouring axial slices as input" in large
    for config, text in ((default, small), (deeper, large)):
        millions = count_parameters(HarmonizerUNet(config)) / 1e6
        assert f"{millions:.2f} M parameters" in text


def test_the_report_states_the_denoising_weight_the_reference_share_gave():
    full = _policy_text(cases=(3, 9))
    off = _policy_text(cases=(2, 12))
    half = _policy_text(cases=(1, 4))
    fixed = _policy_text(cases=(2, 12), pseudo_target_denoise_follows_share=False)

    assert "denoising at weight 0.04" in full
    assert "denoising in full because the reference sites hold 3 of the 9 training" in full
    assert "(2 passes of the global model)" in off
    assert "weight 0.04 became 0 because the reference sites hold only 2 of the 12" in off
    assert "denoising at weight 0.02" in half and "0.04 became 0.02" in half
    assert "denoising at weight 0.04" in fixed
    assert "weight 0.04 became" not in fixed and "in full because" not in fixed
    assert "in full because" not in _policy_text(cases=(3, 9), pseudo_target_denoise=0.0)


def test_a_model_of_reference_cases_only_claims_no_foreign_targets_nor_rounds():
    alone = _policy_text(cases=(3, 3), mode="local")

    assert "every training case came from a reference site and was its own target" in alone
    assert "pseudo-targets" not in alone and "of its slices per round" not in alone
    assert "site optimizer state" not in alone  # no rounds, so nothing kept between them
    assert "progressive pseudo-targets" in _policy_text(cases=(3, 9))
    assert "site optimizer state" not in _policy_text(cases=(3, 9), mode="centralized")


def test_the_report_states_the_recorded_weight_over_todays_rule():
    """A model states the weight it trained with, even if the share rule later moves."""
    recorded = _policy_text(cases=(2, 12), used=0.01)
    fixed = _policy_text(cases=(2, 12), used=0.03, pseudo_target_denoise_follows_share=False)

    assert "denoising at weight 0.01" in recorded
    assert "weight 0.04 became 0.01 because the reference sites hold only 2 of the 12" in recorded
    assert "denoising at weight 0.03" in fixed and "weight 0.04 became" not in fixed


def test_verdict_names_the_best_classical_rival_and_the_outcome() -> None:
    table = {
        "federated": {"cv_wm": 0.03, "nmae": 0.12, "gradient_corr": 0.88},
        "Nyul": {"cv_wm": 0.05, "nmae": 0.13, "gradient_corr": 0.84},
        "N4 + Nyul": {"cv_wm": 0.04, "nmae": 0.10, "gradient_corr": 0.89},
    }

    text = verdict(table, "federated", ["Nyul", "N4 + Nyul"])

    assert "cross-site CV: federated beats the best classical method (N4 + Nyul)" in text
    assert "ground truth: federated does not beat the best classical method (N4 + Nyul)" in text
    assert "0.1200 against 0.1000" in text


def test_bytes_are_summed_per_round_over_messages() -> None:
    entries = [
        {"round": 0, "bytes": 10},
        {"round": 1, "bytes": 100},
        {"round": 1, "bytes": 5},
    ]

    assert sent_per_round(entries) == {0: 10, 1: 105}


def test_the_training_figure_draws_the_reference_sites_line_where_the_log_has_one() -> None:
    def entry(round_: int, with_reference: bool) -> dict:
        sites = {"site-a": {"loss": 0.05}, "site-b": {"loss": 0.09}}
        line = {"round": round_, "phase": "evaluate", "sites": sites, "aggregate": {"loss": 0.07}}
        return {**line, "reference": {"loss": 0.05}} if with_reference else line

    def labels(log: list[dict]) -> list[str]:
        figure = training_figure(log)
        assert figure is not None
        return [line.get_label() for line in figure.axes[0].get_lines()]

    assert labels([entry(1, True), entry(2, True)])[-1] == "reference sites"
    assert "reference sites" not in labels([entry(1, False), entry(2, False)])


def test_the_training_caption_points_at_the_reference_line_only_where_it_is_drawn(tmp_path):
    def caption(lines: list[dict]) -> str:
        run = tmp_path / f"run{len(lines)}"
        run.mkdir()
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (run / "metrics.jsonl").write_text(text, encoding="utf-8")
        inputs = ReportInputs(tmp_path, run / "report", {}, {}, {}, run, 0.5)
        (run / "report").mkdir()
        return training_section(inputs)

    line = {"round": 1, "phase": "evaluate", "sites": {"site-a": {"loss": 0.1}}}
    line["aggregate"] = {"loss": 0.1}
    old = caption([line])
    new = caption([line, {**line, "round": 2, "reference": {"loss": 0.1}}])

    assert "dashed line" in new and "may rise" in new
    assert "dashed" not in old and "ending close together" in old


def test_a_scaled_row_is_explained_under_the_table_and_only_then() -> None:
    from simulations.evaluation import scaled_name

    plain = {"raw": {"nmae": 0.14}, "federated": {"nmae": 0.11}}
    scaled = plain | {scaled_name("federated"): {"nmae": 0.10}}

    assert "apply --input-mapping scale" in metrics_table(scaled, chance=1 / 3)
    assert "input-mapping" not in metrics_table(plain, chance=1 / 3)
