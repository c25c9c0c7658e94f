"""``fedharmonize apply``: harmonize NIfTI scans with a trained model, locally."""

import argparse
import sys
from pathlib import Path

from client.apply import apply_model, plan_jobs
from common.artifact import load_artifact
from common.device import resolve_device
from common.input_mapping import INPUT_MAPPINGS
from fedharmonize.cli.options import add_device_option

DESCRIPTION = """\
Harmonize scans into the model's reference contrast. Runs entirely on this
machine: nothing is sent anywhere.

Each INPUT is a .nii/.nii.gz file or a folder searched recursively. Every scan
gives one output with the same file name under --output (folders keep their
inner layout). Outputs keep the input's affine, orientation and header and are
stored as float32 in reference-profile units (foreground 99th percentile ~ 1).
Inputs are never modified. A scan that cannot be read is reported and skipped;
the exit code is non-zero if any scan failed.
"""

EPILOG = """\
examples:
  fedharmonize apply --model runs/demo/model scans/sub-01_T1w.nii.gz --output harmonized/
  fedharmonize apply --model runs/demo/model /data/site-b/ --output /data/site-b-harmonized/
  fedharmonize apply --model runs/demo/model t1.nii.gz --mask brainmask.nii.gz --output out/
  fedharmonize apply --model runs/demo/model /data/site-a/ --input-mapping scale --output out/

--input-mapping: before the network, a scan is brought into the reference
contrast by a landmark map (default): its foreground percentiles are mapped
onto the consortium profile's. Percentiles move with anatomy too, so the map
also bends the tissue levels of a scan whose anatomy differs from the profile's
cases. A scan acquired with the reference protocol (at a reference site) needs
no contrast change: 'scale' only scales it and keeps its own contrast. On the
2-reference-case phantoms this took the reference site's own scans from NMAE
0.043 / edge agreement 0.982 to 0.028 / 0.996 (docs/training-targets.md,
"Stop 32"). Use 'scale' only for reference-protocol scans: other scans would
keep their foreign contrast. The other sites' scans keep the map's bend, so
scaled and mapped scans of one subject can agree less than two mapped ones
('evaluate --scale-reference-sites' shows both).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="harmonize NIfTI scans with a trained model",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="scan or folder")
    parser.add_argument(
        "--model", required=True, type=Path, help="model folder (RUN/model) holding harmonizer.*"
    )
    parser.add_argument("--output", required=True, type=Path, help="folder for the results")
    parser.add_argument(
        "--mask",
        type=Path,
        help="foreground mask on the scans' grid; default: computed automatically per scan",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace outputs left by an earlier run"
    )
    parser.add_argument(
        "--input-mapping",
        choices=INPUT_MAPPINGS,
        default="landmarks",
        help="landmarks: map each scan's contrast onto the reference profile (default); "
        "scale: only scale it, for scans acquired with the reference protocol (see below)",
    )
    add_device_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    artifact = load_artifact(args.model)
    jobs = plan_jobs(args.inputs, args.output, overwrite=args.overwrite)
    summary = apply_model(
        artifact, jobs, mask_path=args.mask, device=device, input_mapping=args.input_mapping
    )
    print(f"harmonized {len(summary.written)} of {len(jobs)} scans into {args.output}")
    for _source, message in summary.failed:
        print(f"  failed: {message}", file=sys.stderr)
    return 1 if summary.failed else 0
