"""Check a site folder before it joins a federation.

Reads every reference case the way training will, and reports per case: shape,
voxel size, orientation, intensity sanity and foreground share; then checks the
site as a whole: enough cases, consistent voxel sizes, a valid ``site.toml``.
Problems stop the site from joining; warnings are worth a look.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import HarmonizationError
from common.mask import foreground_mask
from common.nifti import load_volume
from common.sites import SiteFolder, read_site

VOXEL_SIZE_TOLERANCE = 0.1
MIN_FOREGROUND_SHARE = 0.02
MAX_NEGATIVE_SHARE = 0.01


@dataclass(frozen=True)
class CaseReport:
    path: Path
    shape: tuple[int, ...] = ()
    spacing: tuple[float, ...] = ()
    orientation: str = ""
    p99: float = float("nan")
    foreground_share: float = float("nan")
    problem: str = ""
    warning: str = ""


@dataclass
class SiteReport:
    site: SiteFolder
    cases: list[CaseReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def usable_cases(self) -> int:
        return sum(1 for case in self.cases if not case.problem)

    @property
    def ok(self) -> bool:
        return not self.problems and all(not case.problem for case in self.cases)


def check_case(path: Path) -> CaseReport:
    try:
        volume = load_volume(path)
        mask = foreground_mask(volume.data)
    except HarmonizationError as error:
        return CaseReport(path=path, problem=str(error))
    data = volume.data
    share = float(mask.mean())
    negative = float((data < 0).mean())
    warning = ""
    if share < MIN_FOREGROUND_SHARE:
        warning = f"foreground is only {share:.1%} of the volume"
    elif negative > MAX_NEGATIVE_SHARE:
        warning = f"{negative:.1%} of voxels are negative; expected a magnitude image"
    return CaseReport(
        path=path,
        shape=tuple(volume.source.shape),
        spacing=tuple(round(s, 3) for s in volume.spacing),
        orientation=volume.orientation,
        p99=float(np.percentile(data[mask], 99)),
        foreground_share=share,
        warning=warning,
    )


def check_site(root: Path, min_cases: int) -> SiteReport:
    """Check every reference case; raises only when the folder itself is unusable."""
    report = SiteReport(site=read_site(root))
    report.cases = [check_case(path) for path in report.site.reference_files]
    if report.usable_cases < min_cases:
        report.problems.append(
            f"{report.usable_cases} usable reference cases; at least {min_cases} are required"
        )
    spacings = np.array([c.spacing for c in report.cases if not c.problem])
    if len(spacings) > 1:
        spread = (spacings.max(axis=0) - spacings.min(axis=0)) / spacings.min(axis=0)
        if float(spread.max()) > VOXEL_SIZE_TOLERANCE:
            report.warnings.append(
                "voxel sizes differ by more than 10% between cases; "
                "resample to one grid for best results"
            )
    report.warnings.extend(
        f"{c.path.name}: {c.warning}" for c in report.cases if c.warning and not c.problem
    )
    return report


def format_report(report: SiteReport) -> str:
    """A plain-text table a site's IT staff can read and paste into a ticket."""
    header = f"{'case':<34} {'shape':<16} {'voxel mm':<18} {'orient':<6} {'p99':>10} {'fg':>6}"
    lines = [
        f"site '{report.site.name}' ({report.site.root})",
        f"modality {report.site.config.modality}, "
        f"reference contributor: {'yes' if report.site.config.reference_contributor else 'no'}",
        "",
        header,
        "-" * len(header),
    ]
    for case in report.cases:
        if case.problem:
            lines.append(f"{case.path.name:<34} PROBLEM: {case.problem}")
            continue
        shape = "x".join(map(str, case.shape))
        spacing = "x".join(f"{s:g}" for s in case.spacing)
        lines.append(
            f"{case.path.name:<34} {shape:<16} {spacing:<18} {case.orientation:<6} "
            f"{case.p99:>10.4g} {case.foreground_share:>6.1%}"
        )
    lines.append("")
    lines.extend(f"PROBLEM: {p}" for p in report.problems)
    lines.extend(f"warning: {w}" for w in report.warnings)
    verdict = "ready to join a federation" if report.ok else "NOT ready: fix the problems above"
    lines.append(f"{report.usable_cases}/{len(report.cases)} cases usable; {verdict}")
    return "\n".join(lines)
