"""``fedharmonize simulate``: the whole federation on this machine (Flower Simulation Engine)."""

import argparse
import logging
from pathlib import Path

from common.errors import InputError
from fedharmonize.cli.options import add_federation_options, federation_run_config

DESCRIPTION = """\
Run the federation locally: one virtual Flower SuperNode per site folder, the
same ServerApp and ClientApp as a real deployment, and no image leaving its
site folder. Round 0 gathers the reference profiles of the contributing sites;
rounds 1..R train the U-Net at every site and aggregate the weights with the
chosen strategy; the finished model is written to RUN/model and sent to every
site, which verifies and stores it (RUN/received/<site>/).

Without --sites-root, a default phantom consortium (3 sites, 4 reference
subjects each, 2 traveling test subjects, 2 mm) is generated into RUN/phantoms.
"""

EPILOG = """\
the run folder:
  RUN/model/                  the harmonizer (safetensors + JSON with provenance)
  RUN/checkpoints/            one checkpoint per round, chained (resume with --resume)
  RUN/metrics.jsonl           per-round metrics, per site and aggregated
  RUN/ledger/<site>.jsonl     every reply each site sent: keys, shapes, bytes
  RUN/received/<site>/        the model as each site stored it

examples:
  fedharmonize simulate --out runs/demo
  fedharmonize simulate --sites-root phantoms/sites --rounds 10 --strategy fedprox --out runs/prox
  fedharmonize simulate --out runs/demo --resume        # continue after a crash
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run the federation locally on Flower's Simulation Engine",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sites-root", type=Path, help="one SITE/reference/ per site (default: phantoms)"
    )
    add_federation_options(parser)
    parser.add_argument("--out", type=Path, default=Path("fedharmonize-run"), help="run folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue RUN from its last intact checkpoint"
    )
    parser.add_argument(
        "--cpus-per-site", type=float, default=1.0, help="CPU cores per virtual site (default 1)"
    )
    parser.set_defaults(handler=run)


def _prepare_sites(args: argparse.Namespace) -> Path:
    if args.sites_root is not None:
        return args.sites_root
    from simulations.phantoms.generate import PhantomRequest, generate_phantoms, prepare_output
    from simulations.phantoms.sites import default_consortium

    phantoms = args.out / "phantoms"
    if not (phantoms / "manifest.json").exists():
        print(f"generating the default phantom consortium in {phantoms}")
        prepare_output(phantoms, force=True)
        generate_phantoms(phantoms, PhantomRequest(seed=args.seed), default_consortium())
    return phantoms / "sites"


def run(args: argparse.Namespace) -> int:
    from simulations.simulate import simulate

    if (args.out / "model").exists() and not args.resume:
        raise InputError(
            f"{args.out / 'model'}: a finished run is already here; choose another --out"
        )
    logging.getLogger("flwr").propagate = False
    sites_root = _prepare_sites(args)
    run_config = federation_run_config(args) | {"resume": args.resume}
    simulate(sites_root, args.out, run_config, cpus_per_site=args.cpus_per_site)
    print(f"model:    {args.out / 'model'}")
    print(f"metrics:  {args.out / 'metrics.jsonl'}")
    print(f"ledgers:  {args.out / 'ledger'}")
    return 0
