"""Fixtures shared by the integration tests: tiny harmonizer settings for fast real runs."""

from pathlib import Path

import pytest

TINY_SETTINGS = """
[model]
base_channels = 8
depth = 2
[training]
batch_size = 8
learning_rate = 0.005
[profile]
bias_correction = "none"
"""


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A settings TOML for a small U-Net, so a round takes seconds on 2 cores."""
    path = tmp_path_factory.mktemp("settings") / "tiny.toml"
    path.write_text(TINY_SETTINGS)
    return path
