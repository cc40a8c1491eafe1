"""Processed tables as Parquet datasets partitioned by province and kabupaten (hive-style folders).

A partitioned table is a folder::

    families/_common_metadata                                    the whole table's schema (Parquet)
    families/kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet one kabupaten's rows
    families/kode_provinsi=63/kode_kabupaten=63.09/part-0.parquet

Each part file is written atomically (:func:`pk2d.io.atomic_path`); the partition columns live in the
folder names, not in the files, as every hive reader expects (pandas, pyarrow, Dask, DuckDB, Polars,
Spark: ``duckdb.sql("from read_parquet('families/*/*/*.parquet', hive_partitioning=true)")``).
``_common_metadata`` (the convention of Arrow and Spark; no ``.parquet`` suffix, so globs skip it)
keeps the column order and types, so :func:`read` gives back exactly the frame that was written.
A table whose rows carry no partition columns of their own (the members: their family's kabupaten)
is written with ``keys`` and read back without them.

>>> import pandas as pd, tempfile, pathlib
>>> df = pd.DataFrame({"kode_provinsi": ["63", "63"], "kode_kabupaten": ["63.09", "63.02"], "x": [1, 2]})
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "t"
>>> [p.as_posix() for p in write(df, folder)]
['kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet', 'kode_provinsi=63/kode_kabupaten=63.09/part-0.parquet']
>>> read(folder)["x"].tolist(), read(folder, filters=[("kode_kabupaten", "==", "63.09")])["x"].tolist()
([2, 1], [1])
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Sequence

import pandas as pd

#: the partition columns, outermost first
PARTITION_BY = ("kode_provinsi", "kode_kabupaten")
SCHEMA_FILE = "_common_metadata"
PART_FILE = "part-0.parquet"
_META_KEY = b"pk2d.partition_by"


def part_path(values: Sequence[str], by: Sequence[str] = PARTITION_BY) -> PurePosixPath:
    """The relative path of one partition's file (``kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet``)."""
    for v in values:
        if not isinstance(v, str) or not v or any(c in v for c in "/\\=") or v.startswith((".", "_")):
            raise ValueError(f"pk2d bug: {v!r} cannot name a partition folder")
    return PurePosixPath(*(f"{c}={v}" for c, v in zip(by, values)), PART_FILE)


def write(df: pd.DataFrame, folder: str | Path, *, by: Sequence[str] = PARTITION_BY,
          keys: pd.DataFrame | None = None) -> list[PurePosixPath]:
    """Write ``df`` as a dataset partitioned by ``by``, one file per partition (in sorted order of the
    partition values; rows keep their order inside a partition). ``keys``: the partition values of each
    row when ``df`` has no such columns (same index as ``df``); they are then not part of the table.
    Returns the part files written, relative to ``folder``."""
    written, schema = write_parts(df, folder, by=by, keys=keys)
    write_schema(folder, [schema], by=by, own=keys is None)
    return written


def write_parts(df: pd.DataFrame, folder: str | Path, *, by: Sequence[str] = PARTITION_BY,
                keys: pd.DataFrame | None = None):
    """The part files of :func:`write` without ``_common_metadata`` (several tasks each write theirs, then
    :func:`write_schema` unifies the schemas they return): ``(part files written, schema)``."""
    import pyarrow as pa

    folder = Path(folder)
    by = list(by)
    own = keys is None
    keys = df[by] if own else keys[by]
    if keys.isna().any().any():
        raise ValueError("pk2d bug: a row without its partition value")
    full = pa.Table.from_pandas(df, preserve_index=False)  # types inferred from all the values, once
    data = full.drop_columns(by) if own else full
    written = []
    for values, idx in keys.reset_index(drop=True).groupby(by, sort=True, observed=True).indices.items():
        values = (values,) if not isinstance(values, tuple) else values
        written.append(_write_table(data.take(idx), folder, [str(v) for v in values], by))
    return written, full.schema


def write_part(df: pd.DataFrame, folder: str | Path, *, by: Sequence[str] = PARTITION_BY):
    """Write the rows of ONE partition (``df`` holds the partition columns, one value each) as its part
    file; returns ``(relative path, schema of the whole table)``. The tasks of a distributed stage each
    write their own part; :func:`write_schema` then unifies what they returned."""
    import pyarrow as pa

    by = list(by)
    values = [df[c].unique() for c in by]
    if any(len(v) != 1 for v in values):
        raise ValueError("pk2d bug: write_part needs the rows of exactly one partition")
    full = pa.Table.from_pandas(df, preserve_index=False)
    return _write_table(full.drop_columns(by), Path(folder), [str(v[0]) for v in values], by), full.schema


def write_schema(folder: str | Path, schemas: Sequence, *, by: Sequence[str] = PARTITION_BY,
                 own: bool = True) -> None:
    """``_common_metadata``: the schemas of the parts made one (a column that is empty in one part takes
    the type it has in the others), with the first part's pandas metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    whole = pa.unify_schemas(list(schemas))
    meta = {**(schemas[0].metadata or {}), _META_KEY: json.dumps({"by": list(by), "own": own}).encode()}
    with atomic_path(folder / SCHEMA_FILE) as tmp:
        pq.write_metadata(whole.with_metadata(meta), tmp)


def _write_table(table, folder: Path, values: Sequence[str], by: Sequence[str]) -> PurePosixPath:
    import pyarrow.parquet as pq

    from .io import atomic_path

    rel = part_path(values, by)
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    return rel


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / SCHEMA_FILE).is_file()


def files(folder: str | Path) -> list[Path]:
    """The part files of a dataset, in partition order."""
    return sorted(Path(folder).glob("*=*/" * len(_layout(folder)["by"]) + PART_FILE))


def _layout(folder) -> dict:
    import pyarrow.parquet as pq

    schema = pq.read_schema(Path(folder) / SCHEMA_FILE)
    return {**json.loads(schema.metadata[_META_KEY]), "schema": schema}


def partitions(folder: str | Path) -> list[dict]:
    """Each partition of a dataset: ``{"values": {column: value}, "path": part file}``, in order."""
    out = []
    for p in files(folder):
        parts = p.relative_to(folder).parts[:-1]
        out.append({"values": dict(part.split("=", 1) for part in parts), "path": p})
    return out


def read(folder: str | Path, *, columns: Sequence[str] | None = None, filters=None, use_threads: bool = True,
         paths: Sequence[Path] | None = None) -> pd.DataFrame:
    """A dataset written by :func:`write` as the frame that was written (column order and types), or its
    ``columns``; ``filters`` as in :func:`pandas.read_parquet` (partition columns included, also those of a
    table written with ``keys``); ``paths``: only these part files (default: all)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    folder = Path(folder)
    layout = _layout(folder)
    whole, by = layout["schema"], layout["by"]
    part_schema = pa.schema([pa.field(c, pa.string()) for c in by])
    names = list(columns) if columns is not None else list(whole.names)
    unknown = [c for c in names if c not in whole.names]
    if unknown:
        raise KeyError(f"columns {unknown} are not in the table {folder.name}")
    target = pa.schema([whole.field(c) for c in names], metadata=whole.metadata)
    chosen = files(folder) if paths is None else [Path(p) for p in paths]
    if not chosen:
        return target.empty_table().to_pandas()
    fields = [whole.field(c) for c in whole.names] + [f for f in part_schema if f.name not in whole.names]
    dataset = ds.dataset([str(p) for p in chosen], schema=pa.schema(fields), format="parquet",
                         partition_base_dir=str(folder), partitioning=ds.partitioning(part_schema, flavor="hive"))
    expr = pq.filters_to_expression(filters) if filters else None
    table = dataset.to_table(columns=names, filter=expr, use_threads=use_threads)
    return table.replace_schema_metadata(_pandas_meta(whole, names)).to_pandas()


def _pandas_meta(schema, names) -> dict:
    """The schema's pandas metadata restricted to ``names`` (so dtypes come back as written)."""
    meta = dict(schema.metadata or {})
    if b"pandas" in meta:
        pandas_meta = json.loads(meta[b"pandas"])
        keep = set(names)
        pandas_meta["columns"] = [c for c in pandas_meta["columns"] if c.get("name") in keep]
        pandas_meta["column_indexes"] = pandas_meta.get("column_indexes", [])
        pandas_meta["index_columns"] = []
        meta[b"pandas"] = json.dumps(pandas_meta).encode()
    meta.pop(_META_KEY, None)
    return meta
