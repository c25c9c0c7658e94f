"""The simulation reads its settings before it makes a folder or starts Flower."""

from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigError
from simulations.simulate import simulate


def test_a_bad_settings_text_fails_before_the_run_folder_exists(
    phantom_folder: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    benchmark, _ = phantom_folder
    run = tmp_path / "run"

    with pytest.raises(ConfigError, match=r"model\.depth"):
        simulate(benchmark / "sites", run, {"settings-toml": "[model]\ndepth = 7\n"})

    assert not run.exists()
