"""The command line: help that teaches, one-line errors, exit codes."""

import subprocess
import sys

import pytest

from fedharmonize.cli.main import main

ROOT_COMMANDS = ["phantoms", "train-local", "apply", "site"]


@pytest.mark.parametrize(
    ("argv", "must_mention"),
    [
        (["apply", "--help"], ["--model", "--output", "--mask", "never modified", "examples"]),
        (["train-local", "--help"], ["--sites-root", "--out", "centralized", "examples"]),
        (["site", "check", "--help"], ["SITE_DIR", "site.toml", "reference_contributor"]),
        (
            ["simulate", "--help"],
            ["--compare-local", "--no-centralized", "--no-evaluation", "report.html"],
        ),
        (["evaluate", "--help"], ["--compare", "haarpsi", "report.html", "lower is better"]),
    ],
)
def test_help_teaches(argv, must_mention, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    text = capsys.readouterr().out

    assert exit_info.value.code == 0
    for phrase in must_mention:
        assert phrase in text


def test_evaluate_help_explains_every_metric_of_the_catalogue(capsys):
    from simulations.metric_catalogue import METRICS

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])

    text = capsys.readouterr().out
    missing = [key for key in METRICS if key not in text]
    assert not missing


def test_train_local_help_names_every_model_field_and_target_choice(capsys):
    from typing import get_args

    from common.configs.model import UNetConfig
    from common.configs.training import TrainingConfig

    with pytest.raises(SystemExit):
        main(["train-local", "--help"])

    text = capsys.readouterr().out
    choices = get_args(TrainingConfig.model_fields["non_reference_targets"].annotation)
    named = [*UNetConfig.model_fields, *(f'"{choice}"' for choice in choices)]
    assert [name for name in named if name not in text] == []


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])

    text = capsys.readouterr().out
    assert all(command in text for command in ROOT_COMMANDS)


def test_user_errors_are_one_line_on_stderr_with_exit_code_2(tmp_path, capsys):
    code = main(["site", "check", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err

    assert code == 2
    assert err.count("\n") == 1
    assert "nowhere: site folder not found" in err
    assert "Traceback" not in err


def test_site_check_exit_codes(sites_root, capsys):
    assert main(["site", "check", str(sites_root / "site-a")]) == 0
    assert main(["site", "check", str(sites_root / "site-a"), "--min-cases", "9"]) == 1
    assert "NOT ready" in capsys.readouterr().out


def test_apply_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    code = main(["apply", "--model", str(tmp_path / "nope"), "x.nii.gz", "--output", "out"])

    assert code == 2
    assert "model folder not found" in capsys.readouterr().err


def test_evaluate_refuses_a_comparison_named_like_the_main_model(tmp_path, capsys):
    from common.artifact import Provenance, save_artifact
    from common.configs.model import UNetConfig
    from common.model import build_model
    from tests.conftest import tiny_profile

    provenance = Provenance(mode="centralized", sites=("a",), reference_sites=("a",), rounds=0)
    model = build_model(UNetConfig(base_channels=8, depth=2), 0)
    save_artifact(tmp_path / "model", model, tiny_profile(), provenance)
    argv = ["evaluate", "--model", str(tmp_path / "model"), "--benchmark", str(tmp_path)]

    code = main([*argv, "--compare", f"centralized={tmp_path / 'model'}"])

    assert code == 2
    assert "the main model has that name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--compare-local", "site-a"], "--compare-local with --no-evaluation"),
        (["--no-centralized"], "--no-centralized with --no-evaluation"),
        (["--compare-local", "--no-centralized"], "--compare-local and --no-centralized"),
    ],
)
def test_simulate_refuses_comparisons_it_would_skip_before_doing_anything(
    flags, named, tmp_path, capsys
):
    run = tmp_path / "run"

    code = main(["simulate", "--out", str(run), "--no-evaluation", *flags])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and named in err
    assert not run.exists()  # no phantoms generated, no federation started


@pytest.mark.parametrize(
    "command",
    [
        ["simulate"],
        ["simulate", "--sites-root", "SITES"],
        ["deploy", "local", "--sites-root", "SITES"],
    ],
)
def test_a_bad_settings_file_is_refused_before_anything_starts(command, tmp_path, capsys):
    settings = tmp_path / "deep.toml"
    settings.write_text("[model]\ndepth = 7\n")
    run = tmp_path / "run"
    sites = str(tmp_path / "nowhere" / "sites")
    command = [sites if word == "SITES" else word for word in command]

    code = main([*command, "--out", str(run), "--config", str(settings)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "deep.toml" in err and "model.depth" in err
    assert not run.exists()  # no phantoms generated, no Flower process started


def test_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "fedharmonize.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout.startswith("fedharmonize ")
