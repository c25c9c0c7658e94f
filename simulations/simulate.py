"""The whole federation on one machine, on Flower's Simulation Engine.

One virtual SuperNode per site folder. The same ServerApp and ClientApp as in a
real deployment run here; the run settings reach them as the flat run config
that ``flwr run --run-config`` would give, injected by a thin wrapper because
the in-process simulation API carries no run config of its own.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from client.app import create_client_app
from common.artifact import METADATA_FILE
from common.configs.federation import FederationConfig
from common.configs.validation import parse_config
from common.errors import HarmonizationError
from common.sites import discover_sites
from server.app import run_server
from server.publishing import MODEL_DIR

logger = logging.getLogger(__name__)

RunConfig = Mapping[str, bool | int | float | str]


def simulation_apps(run_config: RunConfig) -> tuple[ServerApp, object]:
    """ServerApp and ClientApp that see ``run_config`` as their Flower run config."""
    frozen = dict(run_config)

    def configured(context: Context) -> Context:
        return Context(
            run_id=context.run_id,
            node_id=context.node_id,
            node_config=context.node_config,
            state=context.state,
            run_config=dict(frozen),
        )

    def server_main(grid: Grid, context: Context) -> None:
        run_server(grid, configured(context))

    def with_run_config(message: Message, context: Context, call_next) -> Message:
        return call_next(message, configured(context))

    server_app = ServerApp()
    server_app.main()(server_main)
    return server_app, create_client_app(extra_mods=[with_run_config])


def stop_ray() -> None:
    """Leave no Ray worker behind, also after an error or Ctrl-C."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def simulate(
    sites_root: Path, run_dir: Path, run_config: RunConfig, *, cpus_per_site: float = 1.0
) -> FederationConfig:
    """Run every round of the federation over the sites under ``sites_root``.

    Writes checkpoints, the round log, the ledgers and the model into ``run_dir``;
    each virtual site also stores the received model under ``run_dir/received``.
    """
    sites = discover_sites(sites_root)
    if len(sites) < 2:
        raise HarmonizationError(f"{sites_root}: a federation needs at least 2 sites")
    config = {
        **dict(run_config),
        "sites-root": str(Path(sites_root).resolve()),
        "run-dir": str(Path(run_dir).resolve()),
        "min-sites": len(sites),
    }
    parsed = parse_config(FederationConfig, config, "simulation settings")
    parsed.harmonizer_settings()  # the TOML inside is read lazily; fail before any folder
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray notice
    server_app, client_app = simulation_apps(config)
    total_cpus = max(1, os.cpu_count() or 1)
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=len(sites),
            backend_config={
                "client_resources": {"num_cpus": cpus_per_site, "num_gpus": 0.0},
                "init_args": {"num_cpus": total_cpus, "include_dashboard": False},
            },
        )
    finally:
        stop_ray()
    if not (Path(run_dir) / MODEL_DIR / METADATA_FILE).exists():
        raise HarmonizationError(
            f"the federated run did not finish: no model in {Path(run_dir) / MODEL_DIR} "
            "(see the log above for the failing round)"
        )
    return parsed
