"""Path constants, anchored on the package location (no side effects on import).

Every command-line default points here; tests and notebooks pass their own paths.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent

DATA_DIR = PROJECT_DIR / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
REPORTS_DIR = PROJECT_DIR / "reports"
EXECUTED_DIR = REPORTS_DIR / "_executed"
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"

CONTRACT_FILE = PACKAGE_DIR / "contract.yaml"
CATALOGUE_DIR = PACKAGE_DIR / "catalogues"
REFERENCE_DIR = PACKAGE_DIR / "data"
REGIONS_FILE = REFERENCE_DIR / "wilayah.csv"

#: Secret key for pseudonymisation. ``PK2D_KEY`` (environment) wins; otherwise a
#: git-ignored key file, created on first use by :func:`pk2d.cleaning.load_key`.
KEY_ENV = "PK2D_KEY"
KEY_FILE = Path(os.environ.get("PK2D_KEY_FILE", PROJECT_DIR / ".pk2d_key"))
