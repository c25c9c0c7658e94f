"""The federation on Flower's Deployment Engine: a real SuperLink and 2 SuperNodes on loopback."""

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common.artifact import load_artifact, sha256_of
from common.configs.federation import FederationConfig
from common.errors import HarmonizationError
from common.sites import read_site
from simulations.deploy_local import (
    DeployResult,
    choose_ports,
    deploy_local,
    node_config,
    write_app,
)
from simulations.phantoms.generate import PhantomRequest, generate_phantoms
from simulations.phantoms.sites import build_consortium
from simulations.processes import descendants

MESSAGE_TYPES = {"query.profile", "train", "evaluate", "query.model"}


def still_running(pids: tuple[int, ...]) -> list[str]:
    """Command lines of the given PIDs that are alive Flower processes (a reused PID is not)."""
    running = []
    for pid in pids:
        proc = Path("/proc") / str(pid)
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z" and ("flwr" in command or "flower" in command):
            running.append(f"{pid}: {command}")
    return running


@contextmanager
def watching_children() -> Iterator[set[int]]:
    """Every process started below this test process while the block runs, seen from outside."""
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(descendants(os.getpid()))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy-phantoms")
    generate_phantoms(out, PhantomRequest(subjects=3, test_subjects=1), build_consortium(2, 0))
    return out / "sites"


@pytest.fixture(scope="module")
def deployed(two_sites, tiny_settings, tmp_path_factory) -> tuple[DeployResult, set[int]]:
    run = tmp_path_factory.mktemp("deploy-runs") / "run"
    config = {"num-server-rounds": 1, "local-epochs": 1, "settings-toml": tiny_settings.read_text()}
    with watching_children() as seen:
        result = deploy_local(two_sites, run, {**config, "device": "cpu"}, timeout_s=600)
    return result, seen


@pytest.mark.slow
@pytest.mark.integration
def test_every_site_stores_the_model_the_server_wrote(deployed):
    deployed, _ = deployed
    artifact = load_artifact(deployed.model_dir)
    digest = artifact.metadata.weights_sha256

    received = sorted(p.name for p in (deployed.run_dir / "received").iterdir())

    assert received == ["site-a", "site-b"]
    assert sha256_of(deployed.model_dir / "harmonizer.safetensors") == digest
    for site in received:
        assert sha256_of(deployed.run_dir / "received" / site / "harmonizer.safetensors") == digest
    assert artifact.metadata.provenance.sites == ("site-a", "site-b")
    assert artifact.metadata.provenance.rounds == 1


@pytest.mark.slow
@pytest.mark.integration
def test_each_site_ledger_records_every_message_it_answered(deployed):
    deployed, _ = deployed
    ledgers = sorted((deployed.run_dir / "ledger").glob("*.jsonl"))

    kinds = {
        ledger.stem: {json.loads(line)["message_type"] for line in ledger.read_text().splitlines()}
        for ledger in ledgers
    }

    assert kinds == {"site-a": MESSAGE_TYPES, "site-b": MESSAGE_TYPES}


@pytest.mark.slow
@pytest.mark.integration
def test_no_process_outlives_the_deployment_and_each_left_a_log(deployed):
    deployed, seen = deployed
    logs = {p.name for p in deployed.logs_dir.glob("*.log")}

    # SuperLink, 2 SuperNodes, the log stream and at least their 3 SuperExec helpers
    assert len(deployed.pids) >= 7
    assert still_running(deployed.pids + tuple(seen)) == []
    assert {"superlink.log", "supernode-site-a.log", "supernode-site-b.log"} <= logs
    assert "ROUND 1/1" in (deployed.logs_dir / "serverapp.log").read_text()


@pytest.mark.slow
@pytest.mark.integration
def test_a_failing_serverapp_is_reported_with_its_log_and_everything_stops(two_sites, tmp_path):
    bad_settings = tmp_path / "bad.toml"
    bad_settings.write_text("[model]\nbase_channel = 8\n")  # typo: base_channels
    run = tmp_path / "run"

    with (
        watching_children() as seen,
        pytest.raises(HarmonizationError, match="base_channel") as raised,
    ):
        deploy_local(two_sites, run, {"settings-toml": bad_settings.read_text()}, timeout_s=300)

    assert f"see {run / 'logs' / 'serverapp.log'}" in str(raised.value)
    assert len(seen) >= 6
    assert still_running(tuple(seen)) == []


@pytest.mark.integration
def test_a_taken_port_base_is_refused_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(HarmonizationError, match=f"port {port} .* in use"):
            choose_ports(3, port)


@pytest.mark.integration
def test_the_submitted_app_declares_every_run_config_key(tmp_path):
    text = (write_app(tmp_path / "app") / "pyproject.toml").read_text()

    declared = text.split("[tool.flwr.app.config]")[1]

    for name in FederationConfig.model_fields:
        assert f"\n{name.replace('_', '-')} = " in declared
    assert "[tool.flwr.federations]" not in text  # flwr run would rewrite the file


@pytest.mark.integration
def test_node_config_names_the_site_and_keeps_paths_with_spaces(write_nifti, head, tmp_path):
    write_nifti("hospital data/site-x/reference/sub-1.nii.gz", head)
    site = read_site(tmp_path / "hospital data" / "site-x")

    config = node_config(site, tmp_path / "run dir")

    assert config.startswith('site-name="site-x" ')
    assert f'data-path="{tmp_path / "hospital data" / "site-x"}"' in config
    assert f'ledger-dir="{tmp_path / "run dir" / "ledger"}"' in config
