"""Shared fixtures: one run of the pipeline on the shipped sample, built once per test session.

``sample_run`` is read-only (IKK only, few bootstrap and sensitivity draws); a test that changes a
run copies it first (``copy_run``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pk2d import paths
from pk2d.pipeline import build_compare, build_index, clean

KEY = b"test-key"


@pytest.fixture(scope="session")
def sample_key() -> bytes:
    """The pseudonym key the sample run was cleaned with (opening it again with it changes nothing)."""
    return KEY


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample_run") / "processed"
    clean(paths.RAW_DIR, out, key=KEY)
    build_index(out, catalogues=("ikk",))
    build_compare(out, n_boot=99, n_runs=50)
    return out


def copy_run(src: Path, dest: Path) -> Path:
    """A copy of a processed folder that can be changed (the run record moves with it)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".lock", ".pins"))
    return dest
