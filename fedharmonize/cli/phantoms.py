"""``fedharmonize phantoms``: generate multi-site MR phantoms to try the federation on."""

import argparse
import json
import textwrap
import time
from pathlib import Path

from tqdm import tqdm

from simulations.phantoms.scanner import ScannerEffects
from simulations.phantoms.sites import EXAMPLE_TOML

DESCRIPTION = """\
Generate a synthetic multi-site MRI data set from real anatomy and MR physics.

Anatomy is the MNI152 template shipped with nilearn (GM, WM and brain mask;
CSF is the rest of the mask), warped by a smooth random deformation of a few
mm per subject, with a few percent jitter of each subject's T1, T2 and PD.
Each site renders it with its own protocol (spin echo, spoiled gradient echo
or MPRAGE-like inversion recovery, at 1.5 T or 3 T, using literature T1/T2/PD)
and adds its own scanner effects: a smooth bias field per scan, Rician noise
at the site's SNR, blur (anisotropic at some sites), Gibbs ringing from
k-space truncation, and a global gain and offset. The test subjects are
"traveling subjects": the same anatomy scanned at every site, plus the
ground truth under the reference protocol without any effect.
"""

EPILOG = """\
output folder:
  OUT/sites/<site>/reference/sub-NNN_T1w.nii.gz   reference cases (disjoint subjects per site)
  OUT/test/<subject>/<site>_T1w.nii.gz            one test subject scanned at every site
  OUT/test/<subject>/groundtruth_T1w.nii.gz       reference protocol, no noise or shading
  OUT/test/<subject>/{brain,gm,wm,csf}_mask.nii.gz  binary masks
  OUT/manifest.json                               protocols, effects, seeds, reference site
  OUT/preview.png                                 the first test subject at every site

default sites (--sites 3): site-a MPRAGE-like 3 T (the reference site, near
reference quality), site-b spoiled gradient echo 1.5 T (strong shading,
thick slices), site-c spin echo 1.5 T (low SNR, Gibbs ringing). More sites
(--sites N, up to 26) are drawn at random from --seed. The same options and
seed give byte-identical files.

--sites-config FILE describes your own consortium in TOML, for example:

{example}
Sequences and their fields: ir-gre (tr_ms, ti_ms, te_ms, flip_angle_deg),
spoiled-gre (tr_ms, te_ms, flip_angle_deg), spin-echo (tr_ms, te_ms; long TR
and TE make it T2w). A site lists a protocol per modality it scans
([sites.protocols.T2w] for --modality T2w). [reference_protocols.T1w] is
optional (default: ir-gre 3 T, TR 2300, TI 1100, TE 3, flip 9).
Scanner effects, with their defaults:
  [sites.effects]
{effects}

examples:
  fedharmonize phantoms demo-phantoms
  fedharmonize phantoms big --sites 5 --subjects 8 --resolution 1 --seed 7
  fedharmonize phantoms t2 --modality T2w --skull
"""


def _effects_defaults() -> str:
    """The effect fields with their defaults, read from the model so help never drifts."""
    lines = [
        f"  {name} = {json.dumps(field.default)}"
        for name, field in ScannerEffects.model_fields.items()
    ]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantoms",
        help="generate multi-site MR phantoms (traveling subjects, ground truth, masks)",
        description=DESCRIPTION,
        epilog=EPILOG.replace("{example}", textwrap.indent(EXAMPLE_TOML, "  ")).replace(
            "{effects}", _effects_defaults()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to create")
    parser.add_argument(
        "--sites",
        type=int,
        default=None,
        metavar="N",
        help="number of sites (default 3: the built-in sites; more are drawn at random)",
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=4,
        metavar="K",
        help="reference subjects per site (default: %(default)s)",
    )
    parser.add_argument(
        "--test-subjects",
        type=int,
        default=2,
        metavar="T",
        help="traveling test subjects scanned at every site (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default: %(default)s")
    parser.add_argument(
        "--resolution",
        type=int,
        choices=(1, 2),
        default=2,
        metavar="MM",
        help="isotropic voxel size in mm, 1 or 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--sites-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file describing your own sites and reference protocol (instead of --sites)",
    )
    parser.add_argument(
        "--modality",
        choices=("T1w", "T2w"),
        default="T1w",
        help="contrast to generate (default: %(default)s)",
    )
    parser.add_argument(
        "--skull",
        action="store_true",
        help="add a thin scalp (fat) layer outside the brain, like a non-skull-stripped head",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite a non-empty OUT (removes only OUT/sites, OUT/test, manifest, preview)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from common.configs.validation import parse_config
    from common.errors import ConfigError
    from simulations.phantoms.generate import (
        PhantomRequest,
        count_outputs,
        generate_phantoms,
        prepare_output,
    )
    from simulations.phantoms.sites import build_consortium, load_consortium

    request = parse_config(
        PhantomRequest,
        {
            "subjects": args.subjects,
            "test_subjects": args.test_subjects,
            "seed": args.seed,
            "resolution_mm": args.resolution,
            "modality": args.modality,
            "skull": args.skull,
        },
        "phantoms options",
    )
    if args.sites_config is not None and args.sites is not None:
        raise ConfigError("--sites and --sites-config exclude each other; the file names the sites")
    if args.sites_config is not None:
        consortium = load_consortium(args.sites_config)
    else:
        consortium = build_consortium(3 if args.sites is None else args.sites, args.seed)
    source = str(args.sites_config) if args.sites_config else "built-in sites"
    consortium.check_modality(request.modality, source)
    prepare_output(args.out, args.force)

    started = time.perf_counter()
    with tqdm(total=count_outputs(request, consortium), unit="file", desc="phantoms") as bar:

        def advance(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update()

        manifest = generate_phantoms(args.out, request, consortium, progress=advance)

    out = args.out
    subject = manifest["test"][0]["subject"]
    print(f"phantoms written to {out} in {time.perf_counter() - started:.1f} s")
    sites = ", ".join(manifest["sites"])
    print(f"  sites:     {sites} (reference site: {manifest['reference_site']})")
    print(f"  reference: {out / 'sites'}/<site>/reference/  ({request.subjects} per site)")
    print(f"  test:      {out / 'test'}/<subject>/  ({request.test_subjects} traveling subjects)")
    print(f"  manifest:  {out / 'manifest.json'}")
    print(f"  preview:   {out / 'preview.png'}  ({subject} at every site)")
    return 0
