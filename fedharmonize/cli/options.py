"""Options several subcommands share, spelled and explained once."""

import argparse
from pathlib import Path
from typing import get_args

from common.configs.federation import FederationConfig, Strategy
from common.configs.settings import parse_settings, read_settings_text

STRATEGY_NAMES = list(get_args(Strategy))


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="'cpu', 'cuda' or 'cuda:N'; default 'auto' takes a GPU when one is present",
    )


def add_federation_options(parser: argparse.ArgumentParser) -> None:
    """Options of a federated run, shared by ``simulate`` and ``deploy local``."""
    defaults = FederationConfig()
    parser.add_argument(
        "--reference-site",
        action="append",
        default=[],
        metavar="NAME",
        help="site whose profile defines the reference contrast; repeat for several "
        "(default: every site whose site.toml allows it)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=defaults.num_server_rounds,
        metavar="R",
        help="training rounds after the profile round 0 (default: %(default)s; sites outside "
        "the reference contrast train on a quarter of their slices per round, "
        "[training] non_reference_share, so 10 rounds cost what 5 full rounds do)",
    )
    parser.add_argument(
        "--local-epochs",
        type=int,
        default=defaults.local_epochs,
        metavar="E",
        help="epochs each site trains per round (default: %(default)s)",
    )
    parser.add_argument(
        "--strategy",
        default=defaults.strategy,
        choices=STRATEGY_NAMES,
        help="aggregation (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, metavar="S", help="default: %(default)s"
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML harmonizer settings (see train-local)"
    )
    add_device_option(parser)


def checked_settings_text(path: Path) -> str:
    """The settings file's text, validated now: the apps would read it only once started."""
    text = read_settings_text(path)
    parse_settings(text, str(path))
    return text


def federation_run_config(args: argparse.Namespace) -> dict[str, bool | int | float | str]:
    """The flat Flower run config built from :func:`add_federation_options`' options."""
    return {
        "num-server-rounds": args.rounds,
        "local-epochs": args.local_epochs,
        "strategy": args.strategy,
        "seed": args.seed,
        "reference-sites": ",".join(args.reference_site),
        "settings-toml": checked_settings_text(args.config) if args.config else "",
        "device": args.device,
    }
