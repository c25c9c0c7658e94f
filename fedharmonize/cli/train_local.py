"""``fedharmonize train-local``: train without federation, on pooled or single-site data."""

import argparse
from pathlib import Path

from client.local_training import train_local
from common.configs.settings import load_settings
from common.errors import InputError
from common.sites import discover_sites
from fedharmonize.cli.options import add_device_option

DESCRIPTION = """\
Train the harmonizer without federation. The reference cases of the chosen
sites are pooled on this machine: this is the centralized upper bound that a
federated run is compared with, and the path for a consortium of one.

Steps: load each site's SITE/reference/*.nii[.gz]; correct bias fields (N4);
fit each reference site's intensity/k-space profile and merge them; map every
case onto that shared reference contrast; train the U-Net to undo thousands of
random k-space and intensity alterations of those targets; write RUN/model/.
"""

EPILOG = """\
settings file (--config, TOML; every key optional):
  [training]      epochs, batch_size, learning_rate, gradient_loss_weight, seed,
                  non_reference_targets ("pseudo"|"coarse"|"full"), coarse_sigma,
                  pseudo_target_passes, pseudo_target_denoise (TV weight, 0 = off),
                  pseudo_target_denoise_follows_share (true: the weight shrinks when
                  reference sites hold under a third of the training cases),
                  non_reference_weight
  [model]         base_channels, depth, norm ("group"|"instance"), groups, residual,
                  in_channels (1; 3, 5, 7 or 9 for a 2.5D model that sees neighbours)
  [augmentation]  strengths and probabilities of each alteration, through_plane_blur
  [profile]       percentiles, min_cases, bias_correction ("n4"|"none"), match_sharpness

examples:
  fedharmonize train-local --sites-root phantoms/sites --out runs/pooled
  fedharmonize train-local --sites-root phantoms/sites --site site-a --out runs/site-a
  fedharmonize train-local --sites-root /data/sites --epochs 20 --device cuda --out runs/big
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-local",
        help="train without federation (pooled sites or one site)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sites-root", required=True, type=Path, help="folder with one SITE/reference/ per site"
    )
    parser.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="NAME",
        help="train on this site only; repeat for several (default: every site)",
    )
    parser.add_argument(
        "--reference-site",
        action="append",
        default=[],
        metavar="NAME",
        help="site whose cases define the reference contrast; repeat for several "
        "(default: every site whose site.toml allows it, which is all by default)",
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder to create (RUN)")
    parser.add_argument("--config", type=Path, help="TOML settings file (see below)")
    parser.add_argument("--epochs", type=int, help="passes over all slices (default 4)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a model already in RUN/model"
    )
    add_device_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config).with_overrides(
        "training", epochs=args.epochs, seed=args.seed
    )
    if (args.out / "model").exists() and not args.overwrite:
        raise InputError(f"{args.out / 'model'}: already exists (pass --overwrite to replace it)")
    sites = discover_sites(args.sites_root, args.site)
    outcome = train_local(
        sites, args.out, settings, reference_sites=args.reference_site, device_name=args.device
    )
    losses = outcome.result.epoch_losses
    print(
        f"trained on {outcome.num_slices} slices from {len(sites)} site(s); "
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    )
    print(f"model: {args.out / 'model'}")
    return 0
