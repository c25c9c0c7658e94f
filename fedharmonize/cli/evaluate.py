"""``fedharmonize evaluate``: score models against raw scans and classical baselines."""

import argparse
from pathlib import Path

from common.errors import InputError

DESCRIPTION = """\
Harmonize every traveling-subject scan of a benchmark folder (test/<subject>/
<site>_T1w.nii.gz, with groundtruth_T1w and brain/wm/gm/csf masks, as written
by 'fedharmonize phantoms') with the model, with any --compare models and with
the classical baselines (z-score, WhiteStripe, Nyul, N4 + Nyul with and
without 0.5-voxel smoothing), and score them side by side.

Metrics, averaged over subjects (PSNR/SSIM are deliberately not the headline):
  cv_wm, cv_gm, cv_csf  cross-site coefficient of variation of tissue means   lower is better
  wm_gm_spread          cross-site variation of the WM/GM ratio                lower is better
  jsd                   mean pairwise histogram Jensen-Shannon divergence      lower is better
  nmae                  error against the ground truth after a scale fit       lower is better
  gradient_corr         gradient-magnitude correlation with the ground truth   higher is better
  slice_jitter          WM brightness jumps between neighbouring axial slices  lower is better
                        beyond the ground truth's (slice consistency)
  site_acc              accuracy of a classifier guessing the site             best at chance
  noise_hf              high-pass noise proxy in white matter; blurring also   lower is better
                        lowers it, so read it beside gradient_corr
  haarpsi               perceptual similarity to the ground truth (HaarPSI)    higher is better
  ssim, psnr            familiar, known to mislead on medical images; shown    higher is better
                        for comparison, never the headline
"""

EPILOG = """\
outputs (in --out, default RUN/report):
  metrics.json   every method's metrics
  metrics_per_site.json
                 error and edge agreement per method and site (a mean over
                 sites can hide the one hospital a method serves worse)
  metrics.md     the same as a table, best value per metric in bold
  report.html    self-contained report: montage, histograms, metrics table,
                 training curves and bytes sent per site (from RUN/ when the
                 model sits in a federated run folder); PNGs beside it
  <name>/        the harmonized scans of each model

examples:
  fedharmonize evaluate --model runs/demo/model --benchmark runs/demo/phantoms
  fedharmonize evaluate --model runs/fed/model --benchmark phantoms \\
      --compare centralized=runs/pooled/model --out runs/fed/report
  fedharmonize evaluate --model runs/demo/model --benchmark runs/demo/phantoms \\
      --scale-reference-sites --no-baselines
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score models against raw scans and classical baselines",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, help="model folder (RUN/model)")
    parser.add_argument("--benchmark", required=True, type=Path, help="phantom/benchmark folder")
    parser.add_argument("--out", type=Path, help="where results go (default: RUN/report)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=RUN/model",
        help="another model to score beside it; repeat for several",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the classical baselines (faster)"
    )
    parser.add_argument(
        "--scale-reference-sites",
        action="store_true",
        help="also score each model with its reference sites' scans only scaled, not "
        "landmark-mapped (a row 'NAME, reference sites scaled'): how a site that scans "
        "with the reference protocol applies it (apply --input-mapping scale)",
    )
    parser.set_defaults(handler=run)


def parse_compare(values: list[str]) -> dict[str, Path]:
    models = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            raise InputError(f"--compare {value!r}: expected NAME=RUN/model")
        models[name] = Path(path)
    return models


def model_name(model_dir: Path) -> str:
    """Call the main model by how it was trained: federated, centralized or local."""
    from common.artifact import read_metadata

    return read_metadata(model_dir).provenance.mode


def run(args: argparse.Namespace) -> int:
    from simulations.assessment import assess

    main_name = model_name(args.model)
    compared = parse_compare(args.compare)
    if main_name in compared:
        raise InputError(f"--compare {main_name}=...: the main model has that name; rename it")
    models = {main_name: args.model} | compared
    out = args.out or args.model.resolve().parent / "report"
    assessment = assess(
        args.benchmark,
        models,
        out,
        baselines=not args.no_baselines,
        scale_reference_sites=args.scale_reference_sites,
    )
    print(assessment.markdown)
    print(f"metrics: {out / 'metrics.json'}")
    print(f"report:  {assessment.report}")
    return 0
