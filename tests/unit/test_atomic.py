"""Atomic writes give files the mode the user's umask gives any new file (issue 9, bug 3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlwizard.core.kernel import atomic


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    with umask(mask):
        assert atomic.umask() == mask
        written = [
            atomic.write_json(tmp_path / "metadata.json", {"a": 1}),
            atomic.write_text(tmp_path / "notes.txt", "x"),
            atomic.write_bytes(tmp_path / "model.onnx", b"\0"),
        ]
        with atomic.atomic_path(tmp_path / "out.parquet") as tmp:
            tmp.write_bytes(b"PAR1")  # writers that open the temporary path themselves
        written.append(tmp_path / "out.parquet")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives, for comparison
    for path in [*written, plain]:
        assert path.stat().st_mode & 0o777 == mode, path.name


def test_secrets_can_ask_for_0600(tmp_path: Path) -> None:
    with umask(0o022):
        path = atomic.write_text(tmp_path / "token", "s3cret", mode=0o600)
        assert path.stat().st_mode & 0o777 == 0o600
        again = atomic.write_text(tmp_path / "token", "s3cret2", mode=0o600)  # replaced: still
        assert again.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temporary file left
