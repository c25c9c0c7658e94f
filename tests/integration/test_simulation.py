"""The federation for real: Flower's Simulation Engine, 3 phantom sites, short rounds."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.artifact import load_artifact, sha256_of
from common.configs.model import UNetConfig
from common.model import build_model
from fedharmonize.cli.main import main
from server.checkpoints import verify_chain
from server.round_log import read_round_log
from simulations.phantoms.generate import PhantomRequest, generate_phantoms
from simulations.phantoms.sites import default_consortium
from simulations.processes import descendants, start_time

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_RECORDS = {"arrays", "metrics", "profile", "site"}


@pytest.fixture(scope="module")
def phantom_sites(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fed-phantoms")
    generate_phantoms(
        out, PhantomRequest(subjects=4, test_subjects=1, seed=3), default_consortium()
    )
    return out / "sites"


def simulate_argv(
    sites: Path, settings: Path, run: Path, local_epochs: int, evaluation: bool = False
) -> list[str]:
    """``fedharmonize simulate`` arguments for a 2-round CPU run with tiny settings."""
    return [
        "simulate",
        *("--sites-root", str(sites), "--rounds", "2", "--local-epochs", str(local_epochs)),
        *("--config", str(settings), "--out", str(run), "--device", "cpu"),
        *([] if evaluation else ["--no-evaluation"]),
    ]


@pytest.fixture(scope="module")
def finished_run(phantom_sites, tiny_settings, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "fed"
    code = main(simulate_argv(phantom_sites, tiny_settings, run, local_epochs=2, evaluation=True))
    assert code == 0
    return run


def test_the_run_ends_in_a_report_of_every_model_against_the_baselines(finished_run):
    report = finished_run / "report"
    table = json.loads((report / "metrics.json").read_text())
    page = (report / "report.html").read_text()

    assert list(table)[:3] == ["raw", "federated", "centralized"]
    per_site = json.loads((report / "metrics_per_site.json").read_text())
    assert list(per_site) == list(table)  # every method, split by hospital
    assert sorted(per_site["federated"]) == ["site-a", "site-b", "site-c"]
    assert {"Nyul", "N4 + Nyul", "N4 + Nyul + smoothing (0.5 vox)"} <= set(table)
    # the centralized model had the federation's slice passes: 2 rounds x 2 local epochs
    # over 3 training cases per site, site-b and site-c on a quarter of theirs
    # (the default non_reference_share): 4 x (3 + 0.25 x 6) / 9 = 2 pooled epochs
    log = json.loads((finished_run / "compare" / "centralized" / "training.json").read_text())
    assert len(log["epoch_losses"]) == 2
    for section in ("summary", "montage", "histograms", "metrics", "training", "traffic"):
        assert f'<section id="{section}">' in page
    assert page.count("data:image/png;base64,") == 4
    assert "No federated round log" not in page and "No site ledgers" not in page


def test_every_site_keeps_its_optimizer_state_on_its_own_disk_only(finished_run):
    sites = sorted(p.stem for p in (finished_run / "ledger").glob("*.jsonl"))
    assert sites == ["site-a", "site-b", "site-c"]
    for site in sites:
        kept = list((finished_run / "cache" / site).glob("optimizer-run-*.pt"))
        assert len(kept) == 1, site  # one file, this run's, rewritten each round
        assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
        ledger = (finished_run / "ledger" / f"{site}.jsonl").read_text()
        assert "exp_avg" not in ledger and "optimizer" not in ledger


def test_simulation_writes_the_model_and_every_site_stores_it(finished_run):
    artifact = load_artifact(finished_run / "model")
    digest = artifact.metadata.weights_sha256

    received = sorted(p.name for p in (finished_run / "received").iterdir())

    assert received == ["site-a", "site-b", "site-c"]
    for site in received:
        assert sha256_of(finished_run / "received" / site / "harmonizer.safetensors") == digest
    provenance = artifact.metadata.provenance
    assert provenance.mode == "federated" and provenance.rounds == 2
    assert provenance.sites == ("site-a", "site-b", "site-c")
    assert provenance.reference_sites == ("site-a",)  # only site-a's site.toml contributes
    # 4 cases per site, one held out: the reference site holds a third, so full denoising
    assert (provenance.reference_training_cases, provenance.training_cases) == (3, 9)
    assert provenance.pseudo_target_denoise_used == 0.04  # a third: the weight in full


def test_training_loss_decreases_and_every_round_is_logged_per_site(finished_run):
    log = [e for e in read_round_log(finished_run) if e["phase"] == "train"]

    assert [e["round"] for e in log] == [1, 2]
    assert all(sorted(e["sites"]) == ["site-a", "site-b", "site-c"] for e in log)
    # the reference site's loss keeps one definition; the others switch from the coarse
    # loss (round 1) to pseudo-targets (round 2 on), so their losses are not comparable
    reference = [e["sites"]["site-a"] for e in log]
    assert reference[-1]["train-loss"] < reference[0]["train-loss-first-epoch"]
    # the reference site's own line, apart from the all-site average, in every phase
    held_out = [e for e in read_round_log(finished_run) if e["phase"] == "evaluate"]
    assert held_out
    for entry in log + held_out:
        assert entry["reference"] == pytest.approx(
            {k: entry["sites"]["site-a"][k] for k in entry["reference"]}
        )
        assert "loss" in entry["reference"] or "train-loss" in entry["reference"]
    assert [c.round for c in verify_chain(finished_run)] == [1, 2]


def test_sites_sent_only_weights_scalar_metrics_and_the_profile(finished_run):
    shapes = {
        k: list(v.shape)
        for k, v in build_model(UNetConfig(base_channels=8, depth=2), 0).state_dict().items()
    }

    for ledger in sorted((finished_run / "ledger").glob("*.jsonl")):
        entries = [json.loads(line) for line in ledger.read_text().splitlines()]
        kinds = {e["message_type"] for e in entries}
        assert kinds == {"query.profile", "train", "evaluate", "query.model"}, ledger.name
        for entry in entries:
            assert set(entry["records"]) <= ALLOWED_RECORDS
            if "arrays" in entry["records"]:
                assert entry["records"]["arrays"]["shapes"] == shapes
            for value in entry["records"].get("metrics", {}).get("values", {}).values():
                assert isinstance(value, int | float)
        profiles = [e for e in entries if "profile" in e["records"]]
        assert len(profiles) == (1 if ledger.stem == "site-a" else 0)
        # round 0 also tells the server how many cases the site trains on, and nothing more
        [zero] = [e for e in entries if e["message_type"] == "query.profile"]
        assert zero["records"]["metrics"]["values"] == {"training-cases": 3}


def test_a_run_killed_after_round_one_resumes_and_finishes(phantom_sites, tiny_settings, tmp_path):
    run = tmp_path / "crashy"
    command = [
        sys.executable,
        *("-m", "fedharmonize.cli.main"),
        *simulate_argv(phantom_sites, tiny_settings, run, local_epochs=1),
    ]
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started: set[int] = set()
    try:
        # a guard against a hang, not a timing: beside three training jobs on 2 cores
        # round 1 took longer than 240 s
        deadline = time.monotonic() + 900
        while not (run / "checkpoints" / "round-001.json").exists():
            assert process.poll() is None, "the run ended before round 1 was checkpointed"
            assert time.monotonic() < deadline, "round 1 never finished"
            started |= descendants(process.pid)
            time.sleep(0.5)
        started |= descendants(process.pid) | {process.pid}
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        for pid in started | {process.pid}:
            if start_time(pid) is not None:
                os.kill(pid, signal.SIGKILL)
    assert not (run / "model").exists()

    code = main([*simulate_argv(phantom_sites, tiny_settings, run, local_epochs=1), "--resume"])

    assert code == 0
    assert [c.round for c in verify_chain(run)] == [1, 2]
    assert {e["round"] for e in read_round_log(run) if e["phase"] == "train"} >= {2}
    assert load_artifact(run / "model").metadata.provenance.rounds == 2
    assert not [pid for pid in started if start_time(pid) is not None]
