"""The desa lokus list: which village each kabupaten chose as its focus village, and in which year.

A small CSV in the raw folder (``*desa_lokus*.csv``) with the columns
``kode_kabupaten, kode_desa, nama_desa, tahun``; several villages per
kabupaten and several years are allowed (for example Sangsang in 2023 and
Pondok Labu in 2024 in Kotabaru). The compare stage reads it once and records
its content and hash in the run; reports read it from the run.

>>> read_lokus("data/raw")[["kode_desa", "tahun"]].to_dict("records")  # doctest: +SKIP
[{'kode_desa': '63.02.06.2012', 'tahun': 2024}]
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputFileError

PATTERN = "*desa_lokus*.csv"
COLUMNS = ["kode_kabupaten", "kode_desa", "nama_desa", "tahun"]


def lokus_files(raw_dir: str | Path | None) -> list[Path]:
    """The desa lokus lists in ``raw_dir`` (none is fine: then no village is a focus village)."""
    if raw_dir is None or not Path(raw_dir).is_dir():
        return []
    return sorted(p for p in Path(raw_dir).glob(PATTERN) if p.is_file() and not p.name.startswith("."))


def read_lokus(raw_dir: str | Path | None) -> pd.DataFrame:
    """Every desa lokus entry, one row per village and year, checked; empty when there is no list.

    A row with a village code that does not start with its kabupaten code, a year that is not a
    number, or a missing column stops with :class:`~pk2d.errors.InputFileError` naming the file,
    row and column.
    """
    frames = []
    for f in lokus_files(raw_dir):
        df = pd.read_csv(f, dtype=str, encoding="utf-8-sig", sep=None, engine="python").fillna("")
        df.columns = [str(c).strip().lower() for c in df.columns]
        missing = [c for c in ("kode_desa", "tahun") if c not in df.columns]
        if missing:
            raise InputFileError(f, f"the desa lokus list has no column {missing[0]!r}.", column=missing[0],
                                 fix=f"give it the columns {', '.join(COLUMNS)} (one row per village and year).")
        df = df.apply(lambda s: s.str.strip())
        if "kode_kabupaten" not in df.columns or (df["kode_kabupaten"] == "").any():
            df["kode_kabupaten"] = df.get("kode_kabupaten", pd.Series("", index=df.index)).mask(
                lambda s: s == "", df["kode_desa"].str[:5])
        if "nama_desa" not in df.columns:
            df["nama_desa"] = ""
        for i, r in df.iterrows():
            row = int(i) + 2  # the header is row 1
            if not r["kode_desa"].startswith(r["kode_kabupaten"] + "."):
                raise InputFileError(f, f"row {row}: village {r['kode_desa']} is not in kabupaten {r['kode_kabupaten']}.",
                                     column="kode_desa", fix="correct kode_kabupaten or kode_desa (10-digit code, "
                                                             "e.g. 63.02.06.2012 in 63.02).")
            if not r["tahun"].isdigit():
                raise InputFileError(f, f"row {row}: year {r['tahun']!r} is not a year.", column="tahun",
                                     fix="write the year the village became desa lokus, e.g. 2024.")
        frames.append(df[COLUMNS].assign(tahun=df["tahun"].astype(int)))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "tahun" else "str") for c in COLUMNS})
    out = pd.concat(frames, ignore_index=True).drop_duplicates(["kode_desa", "tahun"])
    return out.sort_values(["kode_kabupaten", "tahun", "kode_desa"], ignore_index=True)
