"""Options several subcommands share, spelled and explained once."""

import argparse


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="'cpu', 'cuda' or 'cuda:N'; default 'auto' takes a GPU when one is present",
    )
