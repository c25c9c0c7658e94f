"""site check: per-case table, minimum cases, and bad cases reported, not crashed on."""

import numpy as np

from client.site_check import check_site, format_report


def test_healthy_site_is_ready(sites_root):
    report = check_site(sites_root / "site-a", min_cases=3)

    text = format_report(report)

    assert report.ok
    assert report.usable_cases == 3
    assert "sub-00_T1w.nii.gz" in text and "32x40x24" in text and "RAS" in text
    assert "ready to join a federation" in text


def test_too_few_cases_and_a_broken_case(sites_root, write_nifti):
    folder = sites_root / "site-b" / "reference"
    write_nifti("sub-09_T1w.nii.gz", np.zeros((20, 20, 20), np.float32), folder=folder)

    report = check_site(sites_root / "site-b", min_cases=5)
    text = format_report(report)

    assert not report.ok
    assert report.usable_cases == 3
    assert "sub-09_T1w.nii.gz" in text and "constant" in text
    assert "3 usable reference cases; at least 5 are required" in text
    assert "NOT ready" in text


def test_mixed_voxel_sizes_warn(sites_root, write_nifti, head):
    folder = sites_root / "site-a" / "reference"
    write_nifti("sub-07_T1w.nii.gz", head, np.diag([1.0, 1.0, 3.0, 1.0]), folder=folder)

    report = check_site(sites_root / "site-a", min_cases=3)

    assert report.ok
    assert any("voxel sizes differ" in w for w in report.warnings)
