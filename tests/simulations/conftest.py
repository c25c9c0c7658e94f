"""Phantom fixtures: one small phantom folder per test session (2 mm, 3 default sites)."""

from pathlib import Path
from typing import Any

import pytest

from simulations.phantoms.generate import PhantomRequest, generate_phantoms
from simulations.phantoms.sites import default_consortium


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Three default sites, one reference subject each, one traveling test subject."""
    out = tmp_path_factory.mktemp("phantoms")
    request = PhantomRequest(subjects=1, test_subjects=1, seed=0)
    manifest = generate_phantoms(out, request, default_consortium())
    return out, manifest
