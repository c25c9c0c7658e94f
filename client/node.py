"""Who this ClientApp is: the site's name and folders, from the node config.

A real SuperNode is started with ``--node-config 'site-name="..." data-path="..."'``
(optionally ``model-dir``, ``ledger-dir`` and ``cache-dir``, where prepared
reference cases are kept between rounds). In the Simulation Engine each
virtual node only has a ``partition-id``; it takes the site folder of that
index under the run's ``sites-root`` and keeps its outputs under ``run-dir``.
"""

from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context
from pydantic import BaseModel, ConfigDict, Field

from common.configs.federation import FederationConfig
from common.configs.validation import parse_config
from common.errors import ConfigError
from common.sites import discover_sites


class SuperNodeConfig(BaseModel):
    """``--node-config`` of a hospital's SuperNode."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=lambda name: name.replace("_", "-")
    )

    site_name: str = Field(min_length=1, max_length=64)
    data_path: str = Field(min_length=1)
    model_dir: str = ""
    ledger_dir: str = ""
    cache_dir: str = ""


@dataclass(frozen=True)
class SiteNode:
    name: str
    data_path: Path
    model_dir: Path
    ledger_path: Path
    cache_dir: Path


def parse_run_config(context: Context) -> FederationConfig:
    return parse_config(FederationConfig, dict(context.run_config), "run config")


def resolve_node(context: Context, run: FederationConfig) -> SiteNode:
    """The site behind this node, from a SuperNode's node config or a simulation partition."""
    node_config = dict(context.node_config)
    if "partition-id" in node_config:
        if not run.sites_root or not run.run_dir:
            raise ConfigError("simulation needs run config 'sites-root' and 'run-dir'")
        sites = discover_sites(Path(run.sites_root))
        site = sites[int(node_config["partition-id"]) % len(sites)]
        run_dir = Path(run.run_dir)
        return SiteNode(
            name=site.name,
            data_path=site.root,
            model_dir=run_dir / "received" / site.name,
            ledger_path=run_dir / "ledger" / f"{site.name}.jsonl",
            cache_dir=run_dir / "cache" / site.name,
        )
    config = parse_config(SuperNodeConfig, node_config, "node config")
    data_path = Path(config.data_path)
    model_dir = Path(config.model_dir) if config.model_dir else data_path / "model"
    ledger_dir = Path(config.ledger_dir) if config.ledger_dir else data_path / "ledger"
    cache_dir = Path(config.cache_dir) if config.cache_dir else model_dir.parent / "cache"
    return SiteNode(
        name=config.site_name,
        data_path=data_path,
        model_dir=model_dir,
        ledger_path=ledger_dir / f"{config.site_name}.jsonl",
        cache_dir=cache_dir / config.site_name,
    )
