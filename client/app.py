"""The Flower ClientApp: translates messages into calls of :mod:`common.site_training`.

Handlers: ``query.profile`` (round 0: the site's name, its count of training
cases and, if it contributes, its reference profile), ``train``, ``evaluate``
and ``query.model`` (store the final model).
Every reply passes the privacy mod, which checks it and writes the ledger.
"""

import hashlib
from collections.abc import Sequence

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from client.node import SiteNode, parse_run_config, resolve_node
from client.optimizer_store import load_site_optimizer, optimizer_path, save_site_optimizer
from client.privacy import ARRAYS, METRICS, PROFILE, SITE, absolute_round, make_privacy_mod
from common.artifact import store_received_artifact
from common.configs.federation import FederationConfig
from common.configs.settings import HarmonizerSettings
from common.device import resolve_device
from common.model import parameter_shapes, trainable_shapes
from common.profile import ReferenceProfile
from common.site_training import (
    AGGREGATION_WEIGHT,
    DENOISE_KEY,
    TRAINING_CASES,
    describe_result,
    evaluate_slices,
    load_site_cases,
    local_profile,
    round_share,
    shapes_reference,
    site_slices,
    train_round,
)
from common.slices import SliceSet


def _edge(context: Context) -> tuple[FederationConfig, SiteNode, HarmonizerSettings]:
    run = parse_run_config(context)
    return run, resolve_node(context, run), run.harmonizer_settings()


def _ledger_target(context: Context):
    _, node, settings = _edge(context)
    return node.ledger_path, parameter_shapes(settings.model), settings.profile.min_cases


def _site_key(name: str) -> int:
    """A stable integer per site for seeding (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _consortium_profile(message: Message) -> ReferenceProfile:
    return ReferenceProfile.from_json(str(message.content["config"]["profile"]), "server profile")


def send_profile(message: Message, context: Context) -> Message:
    run, node, settings = _edge(context)
    cases = load_site_cases(node.data_path, settings, node.cache_dir)
    profile = local_profile(cases, settings, run.reference_site_names)
    content = RecordDict(
        {
            SITE: ConfigRecord({"site-name": node.name, "contributes": profile is not None}),
            METRICS: MetricRecord({TRAINING_CASES: len(cases.training)}),
        }
    )
    if profile is not None:
        content[PROFILE] = ConfigRecord({"json": profile.to_json()})
    return Message(content=content, reply_to=message)


def round_settings(settings: HarmonizerSettings, config: ConfigRecord) -> HarmonizerSettings:
    """The settings a round trains with: the server's denoising weight, when it sent one.

    The server sets the weight from every site's case count (round 0), which no
    single site knows.
    """
    weight = config.get(DENOISE_KEY)
    if weight is None:
        return settings
    return settings.with_overrides("training", pseudo_target_denoise=float(weight))


def pseudo_round(settings: HarmonizerSettings, reference: bool, server_round: int) -> bool:
    """Whether a site trains on the global model's harmonization of its own cases.

    Only non-reference sites, and only from round 2: the global model of round 1
    is untrained.
    """
    pseudo = settings.training.non_reference_targets == "pseudo"
    return pseudo and not reference and server_round > 1


def round_slices(
    slices: SliceSet, settings: HarmonizerSettings, reference: bool, key: Sequence[int]
) -> SliceSet:
    """What a site trains on this round: a reference site all its slices, others their share.

    ``non_reference_share`` below 1 spends less of the budget on targets that
    carry a foreign scanner's noise (see docs/training-targets.md).
    """
    if reference:
        return slices
    share = settings.training.non_reference_share
    return round_share(slices, share, key, settings.training.seed)


def train(message: Message, context: Context) -> Message:
    run, node, settings = _edge(context)
    config = message.content["config"]
    profile = _consortium_profile(message)
    site = load_site_cases(node.data_path, settings, node.cache_dir).site
    detail = shapes_reference(site, run.reference_site_names)
    influence = 1.0 if detail else settings.training.non_reference_weight
    server_round = absolute_round(config)
    key = (_site_key(node.name), server_round)
    slices = site_slices(
        node.data_path, settings, profile, "training", node.cache_dir, detail=detail
    )
    slices = round_slices(slices, settings, detail, key)
    kept = optimizer_path(node.cache_dir, context.run_id)
    keep = settings.training.keep_optimizer_state
    moments = load_site_optimizer(kept, trainable_shapes(settings.model)) if keep else None
    state, result = train_round(
        message.content[ARRAYS].to_torch_state_dict(),
        slices,
        profile,
        round_settings(settings, config),
        device=resolve_device(run.device),
        key=key,
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        optimizer_state=moments,
        pseudo=pseudo_round(settings, detail, server_round),
    )
    if keep and result.optimizer_state is not None:
        save_site_optimizer(kept, result.optimizer_state)
    content = RecordDict(
        {
            ARRAYS: ArrayRecord(state),
            METRICS: MetricRecord(describe_result(result, influence)),
        }
    )
    return Message(content=content, reply_to=message)


def evaluate(message: Message, context: Context) -> Message:
    run, node, settings = _edge(context)
    profile = _consortium_profile(message)
    slices = site_slices(node.data_path, settings, profile, "held_out", node.cache_dir)
    held_out = len(slices) > 0
    if not held_out:  # a site with only min_cases cases keeps none back
        slices = site_slices(node.data_path, settings, profile, "training", node.cache_dir)
    metrics = evaluate_slices(
        message.content[ARRAYS].to_torch_state_dict(),
        slices,
        profile,
        settings,
        device=resolve_device(run.device),
    )
    metrics |= {"num-examples": float(len(slices)), "held-out": float(held_out)}
    metrics[AGGREGATION_WEIGHT] = metrics["num-examples"]  # evaluation: plain example counts
    return Message(content=RecordDict({METRICS: MetricRecord(metrics)}), reply_to=message)


def receive_model(message: Message, context: Context) -> Message:
    _, node, _ = _edge(context)
    store_received_artifact(
        node.model_dir,
        message.content[ARRAYS].to_torch_state_dict(),
        str(message.content["model"]["metadata"]),
    )
    return Message(content=RecordDict({METRICS: MetricRecord({"stored": 1})}), reply_to=message)


def create_client_app(extra_mods: Sequence[Mod] = ()) -> ClientApp:
    """The ClientApp with its handlers; ``extra_mods`` run before the privacy mod."""
    client_app = ClientApp(mods=[*extra_mods, make_privacy_mod(_ledger_target)])
    client_app.query("profile")(send_profile)
    client_app.train()(train)
    client_app.evaluate()(evaluate)
    client_app.query("model")(receive_model)
    return client_app


app = create_client_app()
