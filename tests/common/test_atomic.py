"""Atomic writes: the old file or the new one, never a half-written one or a leftover."""

from pathlib import Path

import pytest

from common.atomic import write_atomically


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")

    def broken(temporary: str) -> None:
        with open(temporary, "w") as stream:
            stream.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, broken)

    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_written_file_replaces_the_old_one_and_is_readable_by_others(tmp_path):
    target = tmp_path / "sub" / "figure.png"

    write_atomically(target, lambda temporary: Path(temporary).write_text("new"))

    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644
