"""Entry point of the ``fedharmonize`` command.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function taking the parsed namespace and returning an exit
code. User errors (:class:`HarmonizationError`) become one line on stderr.
"""

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from common.errors import HarmonizationError
from fedharmonize import __version__
from fedharmonize.cli import apply, deploy, evaluate, phantoms, simulate, site, train_local

COMMANDS = (phantoms, simulate, deploy, train_local, apply, evaluate, site)


def quiet_flower_phone_home() -> None:
    """Keep Flower's telemetry and update checks off unless the user turned them on."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedharmonize",
        description=(
            "Federated MRI harmonization. Each site trains a U-Net that maps altered "
            "versions of its own reference scans back to a shared reference contrast; "
            "only model weights leave the site."
        ),
        epilog="Run 'fedharmonize COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"fedharmonize {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_flower_phone_home()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Flower's database layer announces its migration plugins at INFO on import.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.handler(args))
    except HarmonizationError as error:
        print(f"fedharmonize {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fedharmonize {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
