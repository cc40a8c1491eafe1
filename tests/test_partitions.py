"""Partitioned tables (pk2d.partitions): the province's own rows in a partition without a kabupaten (Hive's
null), the schema of parts written apart, counting and listing without reading, and other tools reading
them as they are."""
import pandas as pd
import pyarrow as pa
import pytest

from pk2d import partitions


def _areas():
    return pd.DataFrame({"level": ["desa", "kabupaten", "desa", "provinsi"],
                         "code": ["63.02.01.2001", "63.02", "63.09.01.2001", "63"],
                         "index": [70.0, 71.5, 65.0, 69.0]})


def _keys(df):
    where = [partitions.of_area(lvl, code) for lvl, code in zip(df["level"], df["code"])]
    return pd.DataFrame(where, columns=list(partitions.PARTITION_BY))


def test_a_province_row_lives_in_its_partition_without_a_kabupaten(tmp_path):
    df = _areas()
    written = partitions.write(df, tmp_path / "areas", keys=_keys(df))
    assert [p.as_posix() for p in written] == [
        "kode_provinsi=63/kode_kabupaten=63.02/part-0.parquet", "kode_provinsi=63/kode_kabupaten=63.09/part-0.parquet",
        f"kode_provinsi=63/kode_kabupaten={partitions.NULL_VALUE}/part-0.parquet"]
    back = partitions.read(tmp_path / "areas")
    assert list(back.columns) == ["level", "code", "index"]  # the keys are not columns of the table
    assert back["code"].tolist() == ["63.02.01.2001", "63.02", "63.09.01.2001", "63"]  # partition order
    one = partitions.read(tmp_path / "areas", filters=[("kode_kabupaten", "==", "63.02")])
    assert one["code"].tolist() == ["63.02.01.2001", "63.02"]
    assert [p["values"] for p in partitions.partitions(tmp_path / "areas")][-1] == {
        "kode_provinsi": "63", "kode_kabupaten": None}
    assert partitions.count(tmp_path / "areas") == 4
    assert partitions.count(tmp_path / "areas", [("level", "==", "desa")]) == 2


def test_other_tools_read_the_province_rows_with_a_null_kabupaten(tmp_path):
    import duckdb
    import pyarrow.dataset as ds

    df = _areas()
    partitions.write(df, tmp_path / "areas", keys=_keys(df))
    table = ds.dataset(tmp_path / "areas", format="parquet", partitioning="hive").to_table().to_pandas()
    assert table.loc[table["code"] == "63", "kode_kabupaten"].isna().all()
    assert table.loc[table["code"] != "63", "kode_kabupaten"].notna().all()
    rows = duckdb.sql(f"select code, kode_kabupaten from read_parquet('{tmp_path}/areas/*/*/*.parquet', "
                      "hive_partitioning=true) order by code").fetchall()
    assert rows == [("63", None), ("63.02", "63.02"), ("63.02.01.2001", "63.02"), ("63.09.01.2001", "63.09")]


def test_parts_written_apart_read_as_one_table_of_the_wider_types(tmp_path):
    """An int column that has a missing value in another part reads as float (the same numbers), a column
    that is empty in one part as the type the others give it."""
    folder = tmp_path / "t"
    a = pd.DataFrame({"n": [1, 2], "note": [None, None], "x": [float("nan")] * 2, "ok": [True, False]})
    b = pd.DataFrame({"n": [3.0, None], "note": ["p", "q"], "x": ["s", "t"], "ok": [True, True]})
    infos = []
    for df, values in ((a, ["63", "63.02"]), (b, ["63", "63.09"])):
        rel, schema = partitions.write_rows(df, folder, values)
        infos.append((schema, {c for c in df.columns if df[c].isna().all()}))
    partitions.write_schema(folder, [s for s, _ in infos], own=False, empty=[e for _, e in infos])
    back = partitions.read(folder)
    assert back["n"].dtype == "float64" and back["n"].iloc[:3].tolist() == [1.0, 2.0, 3.0]
    assert back["note"].iloc[2:].tolist() == ["p", "q"] and back["note"].iloc[:2].isna().all()
    assert back["x"].iloc[2:].tolist() == ["s", "t"] and back["x"].iloc[:2].isna().all()
    assert back["ok"].tolist() == [True, False, True, True]
    assert partitions.distinct(folder, "x") == ["s", "t"]
    assert partitions.distinct(folder, "n", where_valid="n") == [1.0, 2.0, 3.0]


def test_parts_that_would_change_a_value_to_be_read_together_stop_the_stage(tmp_path):
    """A number in one part and text or a boolean in another is never cast silently: a pk2d bug, said."""
    for i, other in enumerate((pd.DataFrame({"v": ["1.5"]}), pd.DataFrame({"v": [True]}))):
        folder = tmp_path / f"t{i}"
        schemas = [partitions.write_rows(df, folder, ["63", kab])[1]
                   for df, kab in ((pd.DataFrame({"v": [1.5]}), "63.02"), (other, "63.09"))]
        with pytest.raises(RuntimeError, match=f"pk2d bug: the parts of the table {folder.name} disagree: column v"):
            partitions.write_schema(folder, schemas, own=False)


def test_unify_keeps_one_type_per_column():
    s1 = pa.schema([("a", pa.int64()), ("t", pa.timestamp("ns")), ("s", pa.string())])
    s2 = pa.schema([("a", pa.int32()), ("b", pa.bool_()), ("t", pa.null()), ("s", pa.large_string())])
    whole = partitions.unify([s1, s2])
    assert whole.names == ["a", "t", "s", "b"]
    assert whole.field("a").type == pa.int64() and whole.field("t").type == pa.timestamp("ns")
    assert whole.field("b").type == pa.bool_() and whole.field("s").type == pa.large_string()


@pytest.mark.parametrize("value", ["63/02", "a=b", "_x", ".x", "", "50%"])
def test_a_value_that_cannot_name_a_folder_is_a_bug_not_a_path(value):
    with pytest.raises(ValueError, match="cannot name a partition folder"):
        partitions.part_path([value, "63.02"])
