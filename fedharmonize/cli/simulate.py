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

Then the run is judged: the same U-Net is trained centrally on the pooled
data with the same budget (rounds x local epochs), and every traveling
subject (test/ beside the sites folder) is harmonized by both models and by
the classical baselines (z-score, WhiteStripe, Nyul, N4 + Nyul, with and
without smoothing). The result is RUN/report/report.html. With
--compare-local, each site's local-only model (the same total budget, all on
its own data) joins the comparison. --no-centralized skips the pooled model:
with --compare-local SITE it pairs the federation with that site alone (for
example the reference site, to repeat a seed with one comparison model).
"""

EPILOG = """\
the run folder:
  RUN/model/                  the harmonizer (safetensors + JSON with provenance)
  RUN/checkpoints/            one checkpoint per round, chained (resume with --resume)
  RUN/metrics.jsonl           per-round metrics, per site and aggregated
  RUN/ledger/<site>.jsonl     every reply each site sent: keys, shapes, bytes
  RUN/received/<site>/        the model as each site stored it
  RUN/compare/                centralized (and local-only) models, same budget
  RUN/report/report.html      the evaluation report, with metrics.json, metrics_per_site.json
                              and PNGs

examples:
  fedharmonize simulate --out runs/demo
  fedharmonize simulate --sites-root phantoms/sites --rounds 10 --strategy fedprox --out runs/prox
  fedharmonize simulate --out runs/demo --resume        # continue after a crash
  fedharmonize simulate --out runs/full --compare-local # also each site alone
  fedharmonize simulate --out runs/ref --compare-local site-a  # only site-a alone
  fedharmonize simulate --out runs/s3 --seed 3 --compare-local site-a --no-centralized
                                                      # the federation against site-a alone
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
    parser.add_argument(
        "--compare-local",
        nargs="*",
        metavar="SITE",
        help="also train each site alone (or only the SITEs named), with the whole "
        "federation's budget in slice passes, and compare it (each takes about as long "
        "as the centralized model)",
    )
    parser.add_argument(
        "--no-centralized",
        action="store_true",
        help="skip the pooled centralized model; the baselines and any --compare-local "
        "models still run",
    )
    parser.add_argument(
        "--no-evaluation",
        action="store_true",
        help="stop after the federated model; no comparison models, no report",
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


def benchmark_of(sites_root: Path) -> Path | None:
    """The benchmark folder: the parent of SITES when it has traveling subjects in test/."""
    parent = Path(sites_root).resolve().parent
    return parent if (parent / "test").is_dir() else None


def evaluate_run(args: argparse.Namespace, sites_root: Path) -> None:
    from common.configs.settings import load_settings
    from simulations.assessment import assess
    from simulations.comparisons import ComparisonPlan, train_comparisons

    benchmark = benchmark_of(sites_root)
    if benchmark is None:
        print(
            f"no test/ folder of traveling subjects beside {sites_root}: skipping the "
            "evaluation (run 'fedharmonize evaluate' with a benchmark folder later)"
        )
        return
    plan = ComparisonPlan(
        sites_root=sites_root,
        run_dir=args.out,
        settings=load_settings(args.config).with_overrides("training", seed=args.seed),
        epochs=args.rounds * args.local_epochs,
        reference_sites=tuple(args.reference_site),
        local_only=None if args.compare_local is None else tuple(args.compare_local),
        device=args.device,
        centralized=not args.no_centralized,
    )
    if plan.centralized or plan.local_only is not None:
        print(
            "training the comparison models with the federation's budget "
            f"({args.rounds} rounds x {args.local_epochs} local epochs, counted in slice passes)"
        )
    models = {"federated": args.out / "model"} | train_comparisons(plan)
    assessment = assess(benchmark, models, args.out / "report")
    print(assessment.markdown)
    print(f"report:   {assessment.report}")


def _refuse_unused_comparisons(args: argparse.Namespace) -> None:
    """Comparison flags belong to the evaluation; with --no-evaluation they would do nothing."""
    if not args.no_evaluation:
        return
    asked = [
        flag
        for flag, given in (
            ("--compare-local", args.compare_local is not None),
            ("--no-centralized", args.no_centralized),
        )
        if given
    ]
    if asked:
        raise InputError(
            f"{' and '.join(asked)} with --no-evaluation: comparison models are part of the "
            "evaluation, which --no-evaluation skips; drop one of them"
        )


def run(args: argparse.Namespace) -> int:
    from simulations.simulate import simulate

    _refuse_unused_comparisons(args)
    # built first: it validates --config, so a bad settings file fails before phantoms or Flower
    run_config = federation_run_config(args) | {"resume": args.resume}
    if (args.out / "model").exists() and not args.resume:
        raise InputError(
            f"{args.out / 'model'}: a finished run is already here; choose another --out"
        )
    logging.getLogger("flwr").propagate = False
    sites_root = _prepare_sites(args)
    if args.compare_local:  # a misspelt site fails now, not after the whole federation
        from common.sites import discover_sites

        discover_sites(sites_root, args.compare_local)
    simulate(sites_root, args.out, run_config, cpus_per_site=args.cpus_per_site)
    print(f"model:    {args.out / 'model'}")
    print(f"metrics:  {args.out / 'metrics.jsonl'}")
    print(f"ledgers:  {args.out / 'ledger'}")
    if not args.no_evaluation:
        evaluate_run(args, sites_root)
    return 0
