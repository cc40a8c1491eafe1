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
#: the folder name of a missing partition value (Hive's convention, which Arrow, Spark, DuckDB and Polars
#: read back as null): the rows of a table that lie above the partition level, such as a province's own
#: area estimates (``kode_kabupaten`` null)
NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"
_META_KEY = b"pk2d.partition_by"


def part_path(values: Sequence[str | None], by: Sequence[str] = PARTITION_BY) -> PurePosixPath:
    """The relative path of one partition's file (``kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet``;
    a value None is :data:`NULL_VALUE`)."""
    for v in values:
        if v is None:
            continue
        if not isinstance(v, str) or not v or any(c in v for c in "/\\=%") or v.startswith((".", "_")):
            raise ValueError(f"pk2d bug: {v!r} cannot name a partition folder")
    return PurePosixPath(*(f"{c}={NULL_VALUE if v is None else v}" for c, v in zip(by, values)), PART_FILE)


def of_area(level: str, code: str) -> tuple[str, str | None]:
    """The partition (province, kabupaten) the rows of an area are in: its kabupaten's for an area inside
    one (an RT, desa, kecamatan or the kabupaten: a code starts with its parents' codes), or its
    province's own (no kabupaten).

    >>> of_area("desa", "63.02.06.2001"), of_area("kabupaten", "63.02"), of_area("provinsi", "63")
    (('63', '63.02'), ('63', '63.02'), ('63', None))
    """
    parts = str(code).split(".")
    return (parts[0], None) if level == "provinsi" else (parts[0], ".".join(parts[:2]))


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
    :func:`write_schema` unifies the schemas they return): ``(part files written, schema)``. With ``keys``,
    a missing value is a partition of its own (:data:`NULL_VALUE`); the table's own partition columns must
    have every value."""
    import pyarrow as pa

    folder = Path(folder)
    by = list(by)
    own = keys is None
    keys = df[by] if own else keys[by]
    if own and keys.isna().any().any():
        raise ValueError("pk2d bug: a row without its partition value")
    full = pa.Table.from_pandas(df, preserve_index=False)  # types inferred from all the values, once
    data = full.drop_columns(by) if own else full
    written = []
    groups = keys.reset_index(drop=True).groupby(by, sort=False, observed=True, dropna=False).indices
    for values in sorted(groups, key=_sort_key):
        idx = groups[values]
        values = (values,) if not isinstance(values, tuple) else values
        written.append(_write_table(data.take(idx), folder, [None if pd.isna(v) else str(v) for v in values], by))
    return written, full.schema


def _sort_key(values) -> tuple:
    """Partitions in the order of their folders' names (a missing value last, as its folder sorts)."""
    values = (values,) if not isinstance(values, tuple) else values
    return tuple((1, "") if pd.isna(v) else (0, str(v)) for v in values)


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


def write_rows(df: pd.DataFrame, folder: str | Path, values: Sequence[str | None], *,
               by: Sequence[str] = PARTITION_BY):
    """Write ``df`` (rows of one partition, without the partition columns) as the part file of the partition
    ``values`` (None: :data:`NULL_VALUE`); returns ``(relative path, schema)``, for :func:`write_schema`
    with ``own=False``."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    return _write_table(table, Path(folder), list(values), list(by)), table.schema


def write_task_part(df: pd.DataFrame, folder: str | Path, values: Sequence[str | None] | None = None) -> dict:
    """A task's part of a dataset: ``df`` written as the part of the partition ``values`` (:func:`write_rows`;
    None: the partition columns ``df`` holds, :func:`write_part`). Returns what the command checks and
    unifies (:func:`pk2d.engine.check_written`, :func:`write_schema`): ``file`` (relative to ``folder``),
    ``size``, ``schema`` and ``empty`` (the columns that hold no value in it)."""
    folder = Path(folder)
    rel, schema = write_part(df, folder) if values is None else write_rows(df, folder, values)
    return {"file": rel.as_posix(), "size": (folder / rel).stat().st_size, "schema": schema,
            "empty": {c for c in df.columns if df[c].isna().all()}}


def write_schema(folder: str | Path, schemas: Sequence, *, by: Sequence[str] = PARTITION_BY,
                 own: bool = True, empty: Sequence[set] | None = None) -> None:
    """``_common_metadata``: the schemas of the parts made one (:func:`unify`; ``empty``: per schema, the
    columns that hold no value in its part), with each column's pandas metadata from a part of the
    unified type."""
    import pyarrow.parquet as pq

    from .io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        whole = unify(schemas, empty)
    except TypeError as exc:
        raise RuntimeError(f"pk2d bug: the parts of the table {folder.name} disagree: {exc}") from None
    meta = {**(whole.metadata or {}), _META_KEY: json.dumps({"by": list(by), "own": own}).encode()}
    with atomic_path(folder / SCHEMA_FILE) as tmp:
        pq.write_metadata(whole.with_metadata(meta), tmp)


def unify(schemas: Sequence, empty: Sequence[set] | None = None):
    """One schema for parts written apart (the tasks of a stage): each column in the order it first
    appears, of the one type its parts with values give it. Parts may differ only where no value can
    change: integers of any width and floats (read as floats), text in either Arrow string type, a
    column empty in a part (``empty``, or of Arrow's null type) that takes the type the others give it.
    Any other difference (a number in one part, text or a boolean in another) is a pk2d bug and raises
    :class:`TypeError`, rather than cast a value to another type silently. The pandas metadata (dtypes
    to read back) of each column is that of a part whose type is the unified one.

    >>> import pyarrow as pa
    >>> a = pa.schema([("x", pa.int64()), ("y", pa.float64())])
    >>> b = pa.schema([("x", pa.float64()), ("y", pa.string())])
    >>> unify([a, b], [set(), {"y"}])
    x: double
    y: double
    >>> unify([a, b])
    Traceback (most recent call last):
    TypeError: column y: the parts hold double and string
    """
    import pyarrow as pa

    schemas = list(schemas)
    empty = list(empty) if empty is not None else [set()] * len(schemas)
    names = list(dict.fromkeys(n for sch in schemas for n in sch.names))
    fields, entries = [], {}
    for name in names:
        has = [(sch, sch.field(name).type) for sch, e in zip(schemas, empty) if name in sch.names and name not in e]
        has = has or [(sch, sch.field(name).type) for sch in schemas if name in sch.names]
        typ = _wider(name, [t for _, t in has])
        fields.append(pa.field(name, typ))
        source = next((sch for sch, t in has if t == typ), None)
        if source is not None and source.metadata and b"pandas" in source.metadata:
            entries[name] = next((c for c in json.loads(source.metadata[b"pandas"])["columns"]
                                  if c.get("name") == name), None)
    meta = dict(schemas[0].metadata or {}) if schemas else {}
    if b"pandas" in meta:
        pandas_meta = json.loads(meta[b"pandas"])
        pandas_meta["columns"] = [entries.get(n) or {"name": n, "field_name": n, "pandas_type": "float64",
                                                      "numpy_type": "float64", "metadata": None} for n in names]
        meta[b"pandas"] = json.dumps(pandas_meta).encode()
    return pa.schema(fields, metadata=meta or None)


def _wider(name: str, types: list):
    """The type the parts' ``types`` of column ``name`` are read as (:func:`unify`)."""
    import pyarrow as pa

    found = list(dict.fromkeys(t for t in types if not pa.types.is_null(t)))
    if len(found) <= 1:
        return found[0] if found else (types[0] if types else pa.null())
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in found):
        return pa.float64() if any(pa.types.is_floating(t) for t in found) else pa.int64()
    if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in found):
        return pa.large_string()
    raise TypeError(f"column {name}: the parts hold {' and '.join(map(str, found))}")


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
    """Each partition of a dataset: ``{"values": {column: value}, "path": part file}``, in order (a value
    None for :data:`NULL_VALUE`)."""
    out = []
    for p in files(folder):
        parts = (part.split("=", 1) for part in p.relative_to(folder).parts[:-1])
        out.append({"values": {k: None if v == NULL_VALUE else v for k, v in parts}, "path": p})
    return out


def read(folder: str | Path, *, columns: Sequence[str] | None = None, filters=None, use_threads: bool = True,
         paths: Sequence[Path] | None = None) -> pd.DataFrame:
    """A dataset written by :func:`write` as the frame that was written (column order and types), or its
    ``columns``; ``filters`` as in :func:`pandas.read_parquet` (partition columns included, also those of a
    table written with ``keys``); ``paths``: only these part files (default: all)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    whole = _layout(folder)["schema"]
    names = list(columns) if columns is not None else list(whole.names)
    unknown = [c for c in names if c not in whole.names]
    if unknown:
        raise KeyError(f"columns {unknown} are not in the table {folder.name}")
    target = pa.schema([whole.field(c) for c in names], metadata=whole.metadata)
    dataset = _dataset(folder, files(folder) if paths is None else [Path(p) for p in paths])
    if dataset is None:
        return target.empty_table().to_pandas()
    expr = pq.filters_to_expression(filters) if filters else None
    table = dataset.to_table(columns=names, filter=expr, use_threads=use_threads)
    return table.replace_schema_metadata(_pandas_meta(whole, names)).to_pandas()


def _dataset(folder: Path, chosen: Sequence[Path]):
    """The part files ``chosen`` of the dataset at ``folder`` as one Arrow dataset (None when there are none),
    with the table's schema and its partition columns, also those of a table written with ``keys``."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not chosen:
        return None
    layout = _layout(folder)
    whole, by = layout["schema"], layout["by"]
    part_schema = pa.schema([pa.field(c, pa.string()) for c in by])
    fields = [whole.field(c) for c in whole.names] + [f for f in part_schema if f.name not in whole.names]
    return ds.dataset([str(p) for p in chosen], schema=pa.schema(fields), format="parquet",
                      partition_base_dir=str(folder), partitioning=ds.partitioning(part_schema, flavor="hive"))


def column_names(folder: str | Path) -> list[str]:
    """The columns of a dataset, in order (its partition columns too when the rows carry them)."""
    return list(_layout(Path(folder))["schema"].names)


def count(folder: str | Path, filters=None) -> int:
    """The rows of a dataset (that pass ``filters``, as in :func:`read`), counted without reading them."""
    import pyarrow.parquet as pq

    dataset = _dataset(Path(folder), files(folder))
    return dataset.count_rows(filter=pq.filters_to_expression(filters) if filters else None) if dataset else 0


def distinct(folder: str | Path, column: str, *, where_valid: str | None = None) -> list:
    """The distinct values of ``column`` in a dataset (of the rows where ``where_valid`` has a value, when
    given), read a batch at a time: memory bounded by the batch, whatever the size of the table."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = _dataset(Path(folder), files(folder))
    if dataset is None:
        return []
    cols = [column] + ([where_valid] if where_valid and where_valid != column else [])
    found: set = set()
    for batch in dataset.to_batches(columns=cols, filter=ds.field(where_valid).is_valid() if where_valid else None):
        found.update(pc.unique(batch.column(column)).to_pylist())
    return sorted(v for v in found if v is not None)


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
