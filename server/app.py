"""The Flower ServerApp: round 0 (profiles), rounds 1..R (strategy), then publishing.

The work lives in :mod:`server.profile_round`, :mod:`server.strategy`,
:mod:`server.checkpoints` and :mod:`server.publishing`; this module only wires them.
"""

import json
import logging
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp

from common.artifact import Provenance, software_versions
from common.configs.federation import FederationConfig
from common.configs.validation import parse_config
from common.errors import HarmonizationError
from common.model import build_model
from common.site_training import DENOISE_KEY
from common.target_denoising import denoise_weight, recorded_denoise_weight
from server.checkpoints import load_checkpoint_state, verify_chain, write_checkpoint
from server.profile_round import gather_profiles, wait_for_sites
from server.publishing import distribute_model, write_model
from server.round_log import RoundLog
from server.strategy import build_strategy

logger = logging.getLogger(__name__)

DEFAULT_RUN_DIR = "fedharmonize-run"


def run_server(grid: Grid, context: Context) -> None:
    """The whole federated run; ``context.run_config`` holds the validated run settings."""
    run = parse_config(FederationConfig, dict(context.run_config), "run config")
    settings = run.harmonizer_settings()
    run_dir = Path(run.run_dir or DEFAULT_RUN_DIR)
    chain = verify_chain(run_dir) if run.resume else []
    if not run.resume and verify_chain(run_dir):
        raise HarmonizationError(f"{run_dir}: holds checkpoints; resume it or choose a new run dir")
    node_ids = wait_for_sites(grid, run.min_sites, run.reply_timeout_s)
    round_zero = gather_profiles(
        grid, node_ids, run.reference_site_names, settings.profile.min_cases, run.reply_timeout_s
    )
    profile = chain[-1].profile if chain else round_zero.profile
    reference_cases, all_cases = round_zero.case_counts()
    denoise = denoise_weight(settings.training, reference_cases, all_cases)
    if settings.training.non_reference_targets == "pseudo":
        logger.info(
            "pseudo-target denoising weight %g (reference sites hold %d of %d training cases)",
            denoise,
            reference_cases,
            all_cases,
        )
    done = len(chain)
    state = (
        load_checkpoint_state(chain[-1])
        if chain
        else build_model(settings.model, seed=settings.training.seed).state_dict()
    )
    if done < run.num_server_rounds:
        logger.info("training rounds %d..%d", done + 1, run.num_server_rounds)
        strategy = build_strategy(
            run,
            len(node_ids),
            RoundLog(run_dir, round_zero.site_names, done, round_zero.contributors),
        )
        config = ConfigRecord(
            {"profile": profile.to_json(), "round-offset": done, DENOISE_KEY: denoise}
        )

        def checkpoint(server_round: int, arrays: ArrayRecord) -> None:
            if server_round > 0:
                write_checkpoint(
                    run_dir,
                    done + server_round,
                    arrays.to_torch_state_dict(),
                    profile,
                    run.strategy,
                )

        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(state),
            num_rounds=run.num_server_rounds - done,
            timeout=run.reply_timeout_s,
            train_config=config,
            evaluate_config=config,
            evaluate_fn=checkpoint,
        )
        state = result.arrays.to_torch_state_dict()
    provenance = Provenance(
        mode="federated",
        sites=tuple(sorted(round_zero.site_names.values())),
        reference_sites=round_zero.contributors,
        rounds=run.num_server_rounds,
        strategy=run.strategy,
        versions=software_versions(),
        settings=json.loads(settings.model_dump_json()),
        training_cases=all_cases,
        reference_training_cases=reference_cases,
        pseudo_target_denoise_used=recorded_denoise_weight(
            settings.training, reference_cases, all_cases
        ),
    )
    write_model(
        run_dir,
        state,
        settings.model,
        profile,
        provenance,
        input_bias_correction=settings.profile.bias_correction,
    )
    distribute_model(grid, node_ids, run_dir, state, run.reply_timeout_s)


app = ServerApp()
app.main()(run_server)
