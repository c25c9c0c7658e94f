"""A site's optimizer moments, kept on its own disk between rounds."""

import logging
import stat
from pathlib import Path

import torch

from client.optimizer_store import load_site_optimizer, optimizer_path, save_site_optimizer


def _adam_state(shapes: list[tuple[int, ...]]) -> dict:
    parameters = [torch.nn.Parameter(torch.ones(shape)) for shape in shapes]
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    sum(p.sum() for p in parameters).backward()
    optimizer.step()
    return optimizer.state_dict()


def test_a_saved_state_loads_back_private_to_the_site(tmp_path: Path) -> None:
    shapes = [(2, 3), (4,)]
    path = optimizer_path(tmp_path / "cache" / "site-a", run_id=7)
    save_site_optimizer(path, _adam_state(shapes))

    loaded = load_site_optimizer(path, shapes)

    assert loaded is not None
    assert loaded["state"][0]["exp_avg"].shape == (2, 3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_first_round_has_nothing_to_load(tmp_path: Path) -> None:
    assert load_site_optimizer(optimizer_path(tmp_path, 1), [(2,)]) is None


def test_a_state_for_another_model_or_a_broken_file_starts_afresh(tmp_path: Path, caplog) -> None:
    path = optimizer_path(tmp_path, 3)
    save_site_optimizer(path, _adam_state([(2, 3)]))
    with caplog.at_level(logging.WARNING):
        assert load_site_optimizer(path, [(5, 5)]) is None
        assert load_site_optimizer(path, [(2, 3), (4,)]) is None
    assert "does not match" in caplog.text

    path.write_bytes(b"not a torch file")
    assert load_site_optimizer(path, [(2, 3)]) is None


def test_saving_a_new_run_removes_the_older_runs_files(tmp_path: Path) -> None:
    old, new = optimizer_path(tmp_path, 1), optimizer_path(tmp_path, 2)
    save_site_optimizer(old, _adam_state([(2,)]))
    save_site_optimizer(new, _adam_state([(2,)]))

    assert sorted(p.name for p in tmp_path.iterdir()) == [new.name]
