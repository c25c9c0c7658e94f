"""``fedharmonize site check``: validate a site folder before it joins a federation."""

import argparse
from pathlib import Path

from client.site_check import check_site, format_report
from common.configs.profile import ProfileConfig

DESCRIPTION = """\
Check a site folder the way training will read it: SITE/reference/*.nii[.gz]
plus an optional SITE/site.toml. Every reference case is loaded and checked
(readable, 3D, finite, not constant, plausible size and voxel size, a
foreground that can be found); then the site as a whole (enough cases,
consistent voxel sizes). Prints a table; exits 1 if the site is not ready.
"""

EPILOG = """\
site.toml (optional):
  modality = "T1w"               # T1w, T2w, FLAIR or PDw
  reference_contributor = true   # may this site shape the shared reference contrast?
  description = "3T MPRAGE, 1 mm"

example:
  fedharmonize site check /data/hospital-a
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "site", help="site-side checks", description="Tools a hospital runs on its own data."
    )
    actions = parser.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a site folder before it joins a federation",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("site_dir", type=Path, metavar="SITE_DIR")
    check.add_argument(
        "--min-cases",
        type=int,
        default=ProfileConfig().min_cases,
        help="fewest usable reference cases a site needs (default: %(default)s)",
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    report = check_site(args.site_dir, args.min_cases)
    print(format_report(report))
    return 0 if report.ok else 1
