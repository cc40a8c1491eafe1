"""Digests of report units: whether a report's rendered copy still shows what the run holds.

A unit's digest (``report_units.digest``) is the hash of every row of every report table that belongs
to it (:data:`KEY`), of its own row, and of what every report of its catalogue shows
besides its rows (:func:`salts`). Rows hash by value (:func:`_row_hashes`), so the digest a kabupaten's
task computes is the one computed again from the run's tables, whatever the types a part was written in.

>>> import pandas as pd
>>> a = pd.DataFrame({"x": [1, 2], "y": [None, "p"]})
>>> b = pd.DataFrame({"y": [None, "p"], "x": [1.0, 2.0], "z": [None, None]})
>>> bool((_row_hashes(a) == _row_hashes(b)).all())
True
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ..store import digest as store_digest

#: the key columns of every report table: which report a row belongs to
KEY = ("catalogue", "round", "kind", "unit")


def salts(cats, context: dict | None) -> dict[str, str]:
    """Per catalogue: the hash of what every report of it shows besides its rows."""
    return {c.id: store_digest({"catalogue": c.sha256, **(context or {})}) for c in cats}


def run_context(run) -> dict:
    """The ``context`` of :func:`build` as the compare stage of ``run`` recorded it."""
    s = run.settings("compare")
    return {"seed": int(s["seed"]), "n_boot": int(s["n_boot"]), "n_runs": int(s["n_runs"]),
            "design": run.settings("index").get("design")}


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit mixer (splitmix64's finaliser): every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row of ``df``: the sum of a hash of each cell that holds a value, with its column's
    name. Equal rows hash equally however they were typed and wherever their columns stand: numbers (and
    booleans) as float64, anything else as text, and a missing cell, or a column the rows do not have, adds
    nothing (an int count that became a float when one kabupaten had none, or a column that only the
    province's rows of a table fill, must not change a village's digest)."""
    h = np.zeros(len(df), dtype=np.uint64)
    for c in df.columns:
        col = df[c]
        kind = pd.api.types.infer_dtype(col, skipna=True) if col.dtype == object else ""
        missing = col.isna().to_numpy()
        if (pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)
                or kind in ("empty", "floating", "integer", "mixed-integer-float", "boolean")):
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        else:
            values = col.astype("string").fillna("").to_numpy(dtype=object)
        name = np.frombuffer(hashlib.sha256(str(c).encode()).digest()[:8], np.uint64)[0]
        cell = _mix(pd.util.hash_array(values) ^ name)
        cell[missing] = 0
        with np.errstate(over="ignore"):
            h += cell
    return h


def unit_digests(tables: dict[str, pd.DataFrame], units: pd.DataFrame, salts: dict[str, str] | None = None) -> list[str]:
    """sha256 (hex, 24 characters) of every row of every report table that belongs to each unit, in table
    order, of the unit's own row, and of its catalogue's ``salts`` entry: equal digests mean the unit's
    report shows the same numbers, names and settings (whichever kabupaten's task, or read back from the
    run, gave the rows: :func:`_row_hashes`)."""
    key = list(KEY)
    pieces = []
    for t_i, (name, df) in enumerate(sorted(tables.items())):
        if name == "report_units" or not len(df):
            continue
        h = _row_hashes(df.drop(columns=key))
        salt = np.frombuffer(hashlib.sha256(name.encode()).digest()[:8], np.uint64)[0]
        pieces.append(df[key].assign(_t=t_i, _i=np.arange(len(df)), _h=h ^ salt))
    rows = pd.concat(pieces, ignore_index=True).sort_values([*key, "_t", "_i"], kind="stable")
    found = {k: hashlib.sha256(g.to_numpy(np.uint64).tobytes()).hexdigest()
             for k, g in rows.groupby(key, sort=False)["_h"]}
    own = _row_hashes(units.drop(columns=[*key, *(["digest"] if "digest" in units else [])]))
    salts = salts or {}
    return [hashlib.sha256(f"{found.get(k, '')}{h:x}{salts.get(k[0], '')}".encode()).hexdigest()[:24]
            for k, h in zip(units[key].itertuples(index=False, name=None), own)]
