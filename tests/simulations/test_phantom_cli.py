import argparse
import json
from pathlib import Path

import pytest

from common.errors import ConfigError, HarmonizationError
from fedharmonize.cli import phantoms


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fedharmonize")
    subparsers = parser.add_subparsers()
    phantoms.register(subparsers)
    return parser.parse_args(["phantoms", *argv])


def test_defaults_follow_the_contract() -> None:
    args = parse("OUT")

    assert args.handler is phantoms.run
    assert (args.sites, args.subjects, args.test_subjects, args.seed) == (None, 4, 2, 0)
    assert (args.resolution, args.modality, args.skull, args.force) == (2, "T1w", False, False)


def test_help_explains_the_folder_layout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")

    text = capsys.readouterr().out
    for expected in ("groundtruth_T1w.nii.gz", "manifest.json", "preview.png", "reference site"):
        assert expected in text


def test_resolution_other_than_1_or_2_is_rejected_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("OUT", "--resolution", "3")


def test_sites_and_sites_config_exclude_each_other(tmp_path: Path) -> None:
    args = parse(str(tmp_path / "out"), "--sites", "2", "--sites-config", "x.toml")

    with pytest.raises(ConfigError, match="--sites-config"):
        phantoms.run(args)


def test_bad_option_value_is_a_one_line_error(tmp_path: Path) -> None:
    args = parse(str(tmp_path / "out"), "--subjects", "0")

    with pytest.raises(ConfigError, match="subjects"):
        phantoms.run(args)


@pytest.mark.slow
def test_run_writes_the_folder_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "phantoms"
    args = parse(str(out), "--sites", "1", "--subjects", "1", "--test-subjects", "1")

    code = phantoms.run(args)

    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["sites"]) == ["site-a"]
    printed = capsys.readouterr().out
    assert str(out / "manifest.json") in printed and str(out / "preview.png") in printed
    with pytest.raises(HarmonizationError, match="not empty"):
        phantoms.run(args)
