"""Clean stage rules: raw exports -> validated, pseudonymised ``families``/``members`` tables.

:func:`clean_pairs` applies every rule to a group of families/members pairs in memory: read them
(:mod:`pk2d.rawio`), normalise values (vectorised string ops), drop exact duplicates, validate with
a pandera schema built from the contract plus named row rules, reject conflicting duplicates and
orphans, derive age, pseudonymise No. KK / NIK with a keyed HMAC. Every raw row ends up kept,
rejected (``rejects.csv`` says why) or removed as an exact duplicate; the counts are checked to add
up. File-level problems raise :class:`~pk2d.errors.InputFileError`. :func:`clean` runs the groups
and writes the outputs atomically (:mod:`pk2d.clean_stage`); nothing is written when a file fails.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import paths, rawio
from .clean_stage import CleanResult  # noqa: F401 (the result type of clean)
from .errors import InputFileError
from .parse import DTYPES, NUMBER_TYPES, PARSERS, check_columns, file_conventions
from .validate import records, row_rules, validate

CLEAN_VERSION = "1.1"
FAMILY_FRONT = ["id_keluarga", "putaran", "tahun", "kode_provinsi", "nama_provinsi", "kode_kabupaten",
                "nama_kabupaten", "kode_kecamatan", "nama_kecamatan", "kode_desa", "nama_desa", "dusun", "rt",
                "kode_rt", "jenis_kelamin_kepala", "tanggal_wawancara", "bobot", "strata", "psu", "ssu", "populasi_psu",
                "populasi_ssu", "populasi_keluarga"]
MEMBER_COLUMNS = ["id_keluarga", "id_anggota", "putaran", "hubungan", "jenis_kelamin", "umur", "status_kawin",
                  "usia_kawin_pertama", "akta_kelahiran", "status_sekolah", "bekerja", "disabilitas",
                  "jaminan_kesehatan", "imunisasi_lengkap"]
REJECT_COLUMNS = ["table", "file", "row", "column", "rule", "message"]
log = logging.getLogger(__name__)


# ------------------------------------------------------------ normalising ---
def normalise(raw: pd.DataFrame, table: str, stated: dict[str, dict] | None = None
              ) -> tuple[pd.DataFrame, dict[str, pd.Series], dict]:
    """Typed frame of ``raw`` (columns absent from the file become all-missing); per column, the
    mask of cells that held a value the parser did not understand; and per file the conventions
    (:func:`pk2d.parse.file_conventions`; ``stated``: those a mapping states for its files) its numbers
    and dates were read with.

    Raises :class:`~pk2d.errors.InputFileError` for a file that cannot be read right value by value
    (:func:`pk2d.parse.check_columns`).

    >>> typed, bad, conv = normalise(rawio.read_table("x_anggota.csv", "anggota").data, "anggota")  # doctest: +SKIP
    """
    conv = file_conventions(raw, table, stated)
    files = raw["_file"].astype("str") if len(conv) > 1 else None
    out, bad = {c: raw[c] for c in raw.columns if c.startswith("_")}, {}
    for col in rawio.columns(table):
        name, kind = col["name"], col["type"]
        if name not in raw:
            out[name] = pd.Series(None, index=raw.index, dtype=object).astype(DTYPES[kind])
            continue
        parser = (lambda s, c: s) if kind == "str" and col.get("personal") else PARSERS[kind]  # dropped later
        option = "decimal" if kind in NUMBER_TYPES else "dates" if kind == "date" else None
        if option is None:
            out[name] = parser(raw[name], col).astype(DTYPES[kind])
        else:
            word = {"decimal": "decimal", "dates": "order"}[option]
            ways = {}
            for f, c in conv.items():
                ways.setdefault(getattr(c, option), []).append(f)
            parts = [parser(raw[name] if files is None else raw[name][files.isin(fs)], col, **{word: way})
                     for way, fs in ways.items()]
            out[name] = (parts[0] if len(parts) == 1 else pd.concat(parts).reindex(raw.index)).astype(DTYPES[kind])
        unparsed = raw[name].notna() & out[name].isna()
        if unparsed.any():
            bad[name] = unparsed
    check_columns(raw, bad, table)
    return pd.DataFrame(out, index=raw.index), bad, {f: c.to_json() for f, c in conv.items()}


def age_years(born: pd.Series, at: pd.Series) -> pd.Series:
    """Completed years between two dates (Int64).

    >>> born = pd.Series(pd.to_datetime(["2000-06-15", "2000-06-15"]))
    >>> age_years(born, pd.Series(pd.to_datetime(["2024-06-14", "2024-06-15"]))).tolist()
    [23, 24]
    """
    before = (at.dt.month < born.dt.month) | ((at.dt.month == born.dt.month) & (at.dt.day < born.dt.day))
    return (at.dt.year - born.dt.year - before.astype("int64")).astype("Int64")


# --------------------------------------------------------- pseudonymising ---
def load_key(path=None) -> bytes:
    """Pseudonymisation key: ``PK2D_KEY`` (UTF-8) if set, else the key file, created with
    ``secrets.token_hex(32)`` (mode 0600) on first use. Keep it: a new key means new ids.

    >>> load_key()  # doctest: +SKIP
    b'3f1c...'
    """
    if os.environ.get(paths.KEY_ENV):
        return os.environ[paths.KEY_ENV].encode("utf-8")
    path = Path(path or paths.KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise InputFileError(path, "the pseudonymisation key file is empty.",
                                 fix="restore the key used before, or delete the file to create a new key "
                                 "(all id_keluarga/id_anggota will change).") from None
        return key.encode("utf-8")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    log.warning("created a new pseudonymisation key file at %s (keep it; never commit it)", path)
    return load_key(path)


#: HMAC-SHA256 (RFC 2104) as one DuckDB expression over a column ``v`` of unique values: $1 the prefix,
#: $2 and $3 the 64-byte key XOR ipad / opad. ``encode`` gives the UTF-8 bytes (a cast to BLOB would read
#: backslash escapes); ``sha256`` of a BLOB gives lower-case hex, ``unhex`` turns the inner digest back to bytes.
_HMAC_SQL = "SELECT $1 || left(sha256($3 || unhex(sha256($2 || encode(v)))), 16) AS id FROM u"
_SHA256_BLOCK = 64
_IPAD, _OPAD = bytes(x ^ 0x36 for x in range(256)), bytes(x ^ 0x5C for x in range(256))


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The SHA-256 block-size key K0 XOR ipad and XOR opad, as :mod:`hmac` makes them: a key longer than
    the block is hashed first, a shorter one padded with zero bytes."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key: expected bytes or bytearray, but got {type(key).__name__!r}")
    key = bytes(key)
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    return key.translate(_IPAD), key.translate(_OPAD)


def _as_text(uniques: pd.Index) -> pa.Array:
    """``str(value)`` of each unique value as an Arrow string array: strings as they are, integers by
    ``astype(str)`` (the same digits), any other type through ``str`` one unique value at a time."""
    if isinstance(uniques.dtype, pd.StringDtype):
        return pa.array(uniques.array, type=pa.large_string())
    if pd.api.types.is_integer_dtype(uniques.dtype):
        return pa.array(uniques.astype("str").array, type=pa.large_string())
    if uniques.dtype == object and pd.api.types.infer_dtype(uniques, skipna=False) == "string":
        return pa.array(uniques.to_numpy(), type=pa.large_string())
    return pa.array([str(u) for u in uniques.tolist()], type=pa.large_string())


def pseudonymise(values: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """Keyed HMAC-SHA256 of each value (of ``str(value)`` in UTF-8), first 16 hex characters, after a
    letter prefix ("K" for No. KK, "A" for NIK), so an id can never be mistaken for a 16-digit number:
    ``prefix + hmac.new(key, str(value).encode("utf-8"), "sha256").hexdigest()[:16]``, a ``str`` Series on
    the index of ``values``. Missing values raise :class:`ValueError`.

    Each distinct value is hashed once (:func:`pandas.factorize`), by DuckDB's native, multithreaded
    ``sha256`` with the HMAC construction written out, H((K0 ^ opad) || H((K0 ^ ipad) || m)), so a
    national file takes seconds; ``tests/test_pseudonymise.py`` checks it against :mod:`hmac`.

    >>> ids = pseudonymise(pd.Series(["63020101" "01010001"]), b"k", "K")
    >>> ids.str.len().tolist()
    [17]
    >>> import hmac
    >>> ids[0] == "K" + hmac.new(b"k", b"63020101" b"01010001", "sha256").hexdigest()[:16]
    True
    """
    if values.isna().any():
        raise ValueError("cannot pseudonymise missing identifiers")
    import duckdb

    inner, outer = _hmac_pads(key)
    codes, uniques = pd.factorize(values)
    con = duckdb.connect(config={"preserve_insertion_order": True})  # rows come back in the order of u
    try:
        con.register("u", pa.table({"v": _as_text(uniques)}))
        ids = con.sql(_HMAC_SQL, params=[prefix, inner, outer]).to_arrow_table().column("id")
    finally:
        con.close()
    return pd.Series(pd.array(ids, dtype="str").take(codes), index=values.index, dtype="str")


# ----------------------------------------------------------------- stages ---
def _keys(col: str, *frames: pd.DataFrame) -> list[pd.Series]:
    """Integer key of (survey round, ``col``), comparable across ``frames``; -1 if the id is missing."""
    ids = pd.factorize(pd.concat([f[col] for f in frames], ignore_index=True))[0].astype("int64")
    rnd, uniq = pd.factorize(pd.concat([f["_round"] for f in frames], ignore_index=True))
    key, cuts = np.where(ids < 0, -1, ids * len(uniq) + rnd), np.cumsum([0] + [len(f) for f in frames])
    return [pd.Series(key[a:b], index=f.index) for f, a, b in zip(frames, cuts[:-1], cuts[1:])]


def _where(df: pd.DataFrame) -> pd.Series:
    return df["_file"].astype("str") + ":" + df["_row"].astype("str")


def _conflicts(df: pd.DataFrame, key: pd.Series, col: str, rule: str, what: str) -> pd.DataFrame:
    """All rows sharing an id within a round (exact duplicates are already gone)."""
    dup = (key >= 0) & key.duplicated(keep=False)
    rows = _where(df[dup]).groupby(key[dup]).agg(", ".join)
    return records(df, dup, col, rule, lambda r: f"{what} yang sama muncul lagi dengan isian berbeda dalam satu "
                    "putaran (baris " + key[r.index].map(rows).astype("str") + f"); semua baris ditolak [same {what} "
                    "twice in one round with different answers; all rejected]")


def _pair_rounds(fam: pd.DataFrame, raws) -> dict[int, int]:
    """The survey round of each pair (one per families file; negative when unknown)."""
    rounds = {}
    for i, (f, _m) in enumerate(raws):
        found = sorted(fam.loc[fam["_pair"] == i, "putaran"].dropna().unique())
        if len(found) > 1:
            raise InputFileError(f.path, f"the file mixes survey rounds {', '.join(map(str, found))} (column "
                                 "'putaran'); members cannot be assigned to a round.", column="putaran",
                                 fix="split it into one families file and one members file per round.")
        rounds[i] = int(found[0]) if found else -(i + 1)
    return rounds


def _relations(F, M, fk: pd.Series, mk: pd.Series, rej_f: list, rej_m: list) -> None:
    """Members vs families both ways, head count, and the family -> members cascade."""
    rej_m.append(records(M, (mk >= 0) & ~mk.isin(fk), "no_kk", "anggota_tanpa_keluarga",
                          "No. KK anggota tidak ada di file keluarga putaran ini [member's family not in families]"))
    m_bad = M.index.isin(pd.concat(rej_m)["_idx"])
    n = fk.map(((M["hubungan"] == "kepala") & ~m_bad).groupby(mk).sum()).fillna(0).astype("int64")
    f_bad = F.index.isin(pd.concat(rej_f)["_idx"])
    rej_f.append(records(F, ~f_bad & (n != 1), "no_kk", "kepala_keluarga_tidak_satu",
                          lambda r: "keluarga punya " + n[r.index].astype("str") + " kepala keluarga yang sah di "
                          "file anggota, harus tepat 1 [family needs exactly one valid head member]"))
    f_bad = F.index.isin(pd.concat(rej_f)["_idx"])
    where = _where(F[f_bad]).groupby(fk[f_bad]).first()
    rej_m.append(records(M, (mk >= 0) & mk.isin(fk[f_bad]) & ~m_bad, "no_kk", "keluarga_ditolak",
                          lambda r: "keluarganya ditolak (keluarga " + mk[r.index].map(where).astype("str") +
                          ") [the member's family was rejected]"))


def _shifted(df: pd.DataFrame, bad: dict, table: str):
    """Rows whose number of fields differs from the header's (:func:`pk2d.rawfile.read_csv`): rejected
    by name, and out of every other rule (their cells are not where the header says)."""
    mask = df["_shifted"].notna().to_numpy() if "_shifted" in df else np.zeros(len(df), bool)
    rec = records(df, mask, "(baris / row)", "jumlah_kolom_salah",
                   "jumlah kolom baris ini berbeda dengan baris judul: ada pemisah di dalam nilai yang tidak "
                   "dikutip, atau pemisah yang hilang [the row has another number of fields than the header: "
                   "a separator inside an unquoted value, or a missing one]")
    if not mask.any():
        return df, bad, rec
    keep = ~mask
    return df.loc[keep], {c: m.loc[keep] for c, m in bad.items()}, rec


def _drop_exact(df: pd.DataFrame, bad: dict, raw: pd.DataFrame, id_col: str):
    """Drop rows identical after normalisation (unparsed cells compared by their raw text).
    Only rows whose id occurs more than once can be duplicates, so only those are compared."""
    cand = df[id_col].duplicated(keep=False).to_numpy()
    sig = _signature(df, bad, raw, cand)
    dup = np.zeros(len(df), dtype=bool)
    dup[cand] = sig.duplicated().to_numpy()
    return df.loc[~dup], {c: m.loc[~dup] for c, m in bad.items()}, int(dup.sum())


def _signature(df: pd.DataFrame, bad: dict, raw: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """What makes ``rows`` of ``df`` exact duplicates: the typed values, unparsed cells by their raw text."""
    sig = df.loc[rows].drop(columns=["_file", "_row", "_pair", "_shifted"], errors="ignore")
    for c, m in bad.items():
        sig[c] = sig[c].astype(object).where(~m[rows], "\x00" + raw.loc[sig.index, c].astype(object))
    return sig


def link_keys(F: pd.DataFrame, M: pd.DataFrame, f_bad: dict, m_bad: dict, raw: dict, tags: dict[int, str],
              key: bytes) -> np.ndarray:
    """Hashes (uint64, unique) of everything by which a rule compares one row with another: the No. KK of
    families and members within a round (duplicates, conflicts, members without a family, the head count,
    the age at the interview), the NIK within a round (duplicates, conflicts), the desa and kecamatan
    codes (the majority spelling of their names) and the kabupaten (its partition of the output); rows
    without an id by their whole content (exact duplicates). ``tags``: each pair's round (``"r2"``), or
    its file when the round is unknown (then its rows meet no other file's, as in :func:`_keys`).
    Groups of exports whose keys do not meet are cleaned apart with the same result as together
    (:mod:`pk2d.clean_stage`). The hashes are keyed (by a key derived from the pseudonymisation key), so
    they cannot be matched against a list of NIK without it."""
    hash_key = hmac.new(key, b"pk2d link keys", "sha256").hexdigest()[:16]

    def hashed(values: pd.Series) -> np.ndarray:
        return pd.util.hash_array(values.dropna().astype("str").unique().astype(object), hash_key=hash_key)

    out = [hashed(tag + frame["_pair"].map(tags).astype("str") + "|" + frame[col])
           for tag, frame, col in (("k", F, "no_kk"), ("k", M, "no_kk"), ("n", M, "nik"))]
    out += [hashed(tag + F[col]) for tag, col in (("d", "kode_desa"), ("c", "kode_kecamatan"), ("b", "kode_kabupaten"))]
    for frame, bad, table, col in ((F, f_bad, "keluarga", "no_kk"), (M, m_bad, "anggota", "nik")):
        rows = frame[col].isna().to_numpy()
        if rows.any():
            sig = _signature(frame, {c: m for c, m in bad.items() if c in frame}, raw[table], rows)
            sig = sig.astype(object).astype("str").assign(_tag=frame.loc[rows, "_pair"].map(tags).astype("str"))
            out.append(pd.util.hash_pandas_object(sig, index=False, hash_key=hash_key).to_numpy()
                       ^ np.uint64(len(table)))
    return np.unique(np.concatenate(out)).astype(np.uint64)


def _design_columns(families: pd.DataFrame, files: np.ndarray, rows: np.ndarray) -> pd.DataFrame | None:
    """What :func:`_check_designs` needs of the kept families (None when no design column has a value)."""
    from .design import DESIGN_COLUMNS

    cols = [c for c in (DESIGN_COLUMNS["weights"], DESIGN_COLUMNS["strata"], *DESIGN_COLUMNS["ids"],
                        *DESIGN_COLUMNS["fpc"]) if c in families]
    if not any(families[c].notna().any() for c in cols):
        return None
    return families[["putaran", *cols]].assign(_file=files, _row=rows)


def _check_designs(families: pd.DataFrame, files: np.ndarray, rows: np.ndarray | None = None) -> None:
    """A sample's design columns must describe one consistent design per round (checked once, here)."""
    from .design import DESIGN_COLUMNS, DesignError, design_from_scores

    cols = [DESIGN_COLUMNS["weights"], DESIGN_COLUMNS["strata"], *DESIGN_COLUMNS["ids"], *DESIGN_COLUMNS["fpc"]]
    for rnd in sorted(families["putaran"].unique()):
        mask = (families["putaran"] == rnd).to_numpy()
        frame = families.loc[mask]
        if not any(c in frame and frame[c].notna().any() for c in cols):
            continue
        frame = frame.set_axis(rows[mask] if rows is not None else range(len(frame)))  # rows of the file
        try:
            design_from_scores(frame, "sample")
        except DesignError as err:
            names = ", ".join(sorted(set(files[mask])))
            raise InputFileError(names, f"round {int(rnd)}: {err.message}", column=err.column,
                                 fix=err.fix or "correct the design columns (bobot, strata, psu, ssu, "
                                                "populasi_psu, populasi_ssu, populasi_keluarga) so they "
                                                "describe one design") from None


# ---------------------------------------------------------------- outputs ---
def _families_out(F: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    regions = rawio.load_regions().set_index("kode")["nama"]
    out = {c: F.get(c) for c in FAMILY_FRONT} | {
        "id_keluarga": ids, "putaran": F["putaran"].astype("int64"), "tahun": F["tahun"].astype("int64"),
        "nama_provinsi": F["kode_provinsi"].map(regions).astype("str"), "rt": F["rt"].astype("int64"),
        "nama_kabupaten": F["kode_kabupaten"].map(regions).astype("str"),
        "kode_rt": F["kode_desa"] + "." + F["rt"].astype("str").str.zfill(3)}
    for code, name in (("kode_kecamatan", "nama_kecamatan"), ("kode_desa", "nama_desa")):  # majority spelling
        spelled = F.groupby([code, name]).size().sort_values(ascending=False, kind="stable").reset_index()
        out[name] = F[code].map(spelled.drop_duplicates(code).set_index(code)[name])
    answers = [c["name"] for c in rawio.columns("keluarga") if c["name"] not in FAMILY_FRONT and not c.get("personal")]
    return pd.DataFrame(out | {c: F[c] for c in answers}).reset_index(drop=True)


def _members_out(M: pd.DataFrame, kk_ids: pd.Series, nik_ids: pd.Series) -> pd.DataFrame:
    out = M.assign(id_keluarga=kk_ids, id_anggota=nik_ids, putaran=M["_round"].astype("int64"))
    return out[MEMBER_COLUMNS].reset_index(drop=True)


def _accounting(raw: pd.DataFrame, kept: pd.Index, rej: pd.DataFrame, dups: int, table: str):
    """Per-table and per-file row accounting; raises if raw != kept + rejected + duplicates."""
    acc = {"raw": len(raw), "kept": len(kept), "rejected": rej["_idx"].nunique(), "exact_duplicates_removed": dups}
    if acc["raw"] != acc["kept"] + acc["rejected"] + dups:
        raise RuntimeError(f"pk2d bug: row accounting does not add up for {table}: {acc}")
    status = np.full(len(raw), 2)  # raw has a RangeIndex: labels are positions
    status[rej["_idx"].unique()], status[kept.to_numpy()] = 1, 0
    files, names = pd.factorize(raw["_file"])
    counts = np.bincount(files * 3 + status, minlength=3 * len(names)).reshape(-1, 3)
    keys = ("kept", "rejected", "exact_duplicates_removed")
    return acc, {str(n): dict(zip(keys, map(int, c))) for n, c in zip(names, counts)}


def _inputs(raws, rounds, per_file, kabupaten: dict[int, list[str]], conventions: dict) -> list[dict]:
    """The cleaning log's entry of each input file: its format, hash, accounting and the kabupaten its kept
    families belong to (so a report can show the files behind its own kabupaten)."""
    inputs = []
    for i, pair in enumerate(raws):
        for t, rt in zip(rawio.TABLES, pair):
            inputs.append({"file": rt.path.name, "table": t, "putaran": rounds[i] if rounds[i] > 0 else None,
                           **rt.info, **per_file[t][rt.path.name], "kabupaten": kabupaten.get(i, []),
                           "conventions": conventions.get(rt.path.name),
                           "unknown_columns": rt.extra_columns})
    return inputs


def _read_notes(entry: dict) -> list[str]:
    """What was not plain about how a file was read (header row, sheet, conventions, skipped rows)."""
    conv, notes = entry.get("conventions") or {}, []
    if entry.get("format") == "xlsx":
        notes.append(f"lembar (sheet) '{entry['sheet']}'")
    if entry.get("header_row"):
        notes.append(f"judul kolom di baris (header in row) {entry['header_row']}")
    if conv.get("decimal") == ".":
        notes.append("titik desimal (decimal dot)")
    if conv.get("dates") == "mdy":
        notes.append("tanggal bulan/hari/tahun (month-first dates)")
    for key, words in (("header_rows_skipped", "baris judul berulang dilewati (repeated header rows skipped)"),
                       ("rows_with_wrong_field_count", "baris dengan jumlah kolom salah (rows with a wrong field "
                                                       "count)")):
        if entry.get(key):
            notes.append(f"{entry[key]} {words}")
    return notes


def summary_text(log: dict) -> str:
    """The cleaning log's row accounting as readable text (Bahasa Indonesia, English in brackets)."""
    names = {"keluarga": "Keluarga (families)", "anggota": "Anggota (members)"}

    def num(n):
        return f"{n:,}".replace(",", ".")
    lines = [f"pk2d clean {log['pk2d_clean_version']}: {len(log['inputs']) // 2} pasang file (file pairs)"]
    lines += [f"{names[t]}: {num(a['raw'])} baris mentah (raw rows) = {num(a['kept'])} disimpan (kept) + "
              f"{num(a['rejected'])} ditolak (rejected) + {num(a['exact_duplicates_removed'])} duplikat persis "
              "dihapus (exact duplicates removed)"
              + (f" + {num(a['superseded'])} versi lama dari kiriman yang disunting (superseded by an edit)"
                 if a.get("superseded") else "") for t, a in log["accounting"].items()]
    rules = [f"  {t:<9} {r:<32} {num(n):>9}" for t, counts in log["rules"].items() for r, n in counts.items()]
    lines += ["Alasan penolakan, jumlah baris (rejection reasons, rows):", *rules] if rules else []
    lines += [f"Kolom tak dikenal diabaikan (unknown columns ignored) di {f}: {', '.join(cols)}"
              for f, cols in log["unknown_columns"].items()]
    lines += [f"Cara baca (read as) {x['file']}: {', '.join(notes)}" for x in log["inputs"] if (notes := _read_notes(x))]
    if log.get("mapping"):
        mp = log["mapping"]
        lines.append(f"Pemetaan kolom (mapping) {mp['file']} (sha256 {mp['sha256'][:12]}) diterapkan pada (applied "
                     f"to) {len(mp['applied_to'])} file: {', '.join(mp['applied_to'])}")
    return "\n".join(lines + ["Rincian (details): rejects.csv, cleaning_log.json"])


def clean(raw_dir=paths.RAW_DIR, out_dir=paths.PROCESSED_DIR, *, key: bytes | None = None,
          today=None, mapping=None, engine=None):
    """Run the clean stage: read ``raw_dir``, write families/members/rejects/log to ``out_dir``.

    Raises :class:`~pk2d.errors.InputFileError`, and writes nothing, if any file is unusable.
    ``today`` (default: the current date) bounds interview dates; ``key`` defaults to :func:`load_key`.
    ``mapping`` (a mapping file or :class:`pk2d.mapping.Mapping`) is applied to the files it covers
    (:class:`~pk2d.errors.MappingError` when it covers none) and recorded in the log with its hash.
    The exports are cleaned group by group (:mod:`pk2d.clean_stage`), as tasks of ``engine``.

    >>> res = clean("data/raw", "data/processed", key=b"secret")  # doctest: +SKIP
    >>> print(res.summary())  # doctest: +SKIP
    """
    from .clean_stage import clean as clean_groups

    return clean_groups(raw_dir, out_dir, key=key, today=today, mapping=mapping, engine=engine)


def clean_pairs(pairs, raw_dir, *, key: bytes, today: pd.Timestamp, mapping=None) -> dict:
    """Every rule of the clean stage over the exports ``pairs`` (file pairs of ``raw_dir``), in memory.

    Returns the clean ``families`` and ``members``, the ``rejects`` (unsorted), per table the ``rules``
    broken (rows per rule), the ``accounting``, the log's ``inputs`` entries (one per file, in order),
    the files the ``mapping`` was ``applied`` to, the ``links`` (hashes of the identifiers and region codes
    the rules compare across rows, :func:`link_keys`) and the ``design`` columns of the kept families
    (with their file and row; None without design columns). Raises
    :class:`~pk2d.errors.InputFileError` for a file that cannot be used.
    """
    raws = [rawio.read_pair(p, mapping) for p in pairs]
    applied = [rt.path.name for pair in raws for rt in pair if "mapping" in rt.info]
    stated = dict.fromkeys(applied, dict(mapping.formats)) if mapping is not None and mapping.formats else None
    raw = {t: rawio.combine([pair[j] for pair in raws]) for j, t in enumerate(rawio.TABLES)}
    F, f_bad, f_conv = normalise(raw["keluarga"], "keluarga", stated)
    M, m_bad, m_conv = normalise(raw["anggota"], "anggota", stated)
    rounds = _pair_rounds(F, raws)  # the last file-level check
    (F, f_bad, f_shift), (M, m_bad, m_shift) = _shifted(F, f_bad, "keluarga"), _shifted(M, m_bad, "anggota")
    tags = {i: f"r{r}" if r > 0 else f"f{raws[i][0].path.name}" for i, r in rounds.items()}
    links = link_keys(F, M, f_bad, m_bad, raw, tags, key)
    F, f_bad, f_dup = _drop_exact(F.assign(_round=F["_pair"].map(rounds)), f_bad, raw["keluarga"], "no_kk")
    M, m_bad, m_dup = _drop_exact(M.assign(_round=M["_pair"].map(rounds)), m_bad, raw["anggota"], "nik")

    fk, mk = _keys("no_kk", F, M)  # age at the family's interview date
    dates = pd.Series(F["tanggal_wawancara"].to_numpy(), index=fk.to_numpy())
    M["_tgl_wawancara"] = mk.map(dates[~dates.index.duplicated() & (dates.index >= 0)]).astype("datetime64[ns]")
    M["_umur_diisi"] = M["umur"]
    born_after = M["tanggal_lahir"] > M["_tgl_wawancara"]
    M["umur"] = age_years(M["tanggal_lahir"], M["_tgl_wawancara"]).fillna(M["umur"]).mask(born_after)

    regions = rawio.load_regions(raw_dir=raw_dir)
    rej = {"keluarga": [f_shift] + validate(F, "keluarga", f_bad, raw["keluarga"])
           + row_rules(F, "keluarga", today, regions) + [_conflicts(F, fk, "no_kk", "kk_ganda_bertentangan", "No. KK")],
           "anggota": [m_shift] + validate(M, "anggota", m_bad, raw["anggota"]) + row_rules(M, "anggota", today)
           + [_conflicts(M, _keys("nik", M)[0], "nik", "nik_ganda_bertentangan", "NIK")]}
    _relations(F, M, fk, mk, rej["keluarga"], rej["anggota"])
    rej = {t: pd.concat(r, ignore_index=True) for t, r in rej.items()}
    F = F.loc[~F.index.isin(rej["keluarga"]["_idx"])]
    M = M.loc[~M.index.isin(rej["anggota"]["_idx"])]
    kk_ids = pseudonymise(pd.concat([F["no_kk"], M["no_kk"]], ignore_index=True), key, "K")
    families = _families_out(F, kk_ids.iloc[:len(F)].set_axis(F.index))
    members = _members_out(M, kk_ids.iloc[len(F):].set_axis(M.index), pseudonymise(M["nik"], key, "A"))
    if families.duplicated(["putaran", "id_keluarga"]).any():
        raise RuntimeError("pk2d bug: putaran + id_keluarga is not unique in the clean families table")

    design = _design_columns(families, raw["keluarga"].loc[F.index, "_file"].astype("str").to_numpy(),
                             raw["keluarga"].loc[F.index, "_row"].to_numpy())
    accounting, per_file = {}, {}
    for j, (t, kept, dups) in enumerate((("keluarga", F.index, f_dup), ("anggota", M.index, m_dup))):
        accounting[t], per_file[t] = _accounting(raw[t], kept, rej[t], dups, t)
        superseded = sum(pair[j].info.get("superseded", 0) for pair in raws)
        if superseded:  # edited submissions of a field tool: the older versions, never read as rows
            accounting[t].update(raw=accounting[t]["raw"] + superseded, superseded=superseded)
    rejects = pd.concat([r.assign(table=t, file=raw[t].loc[r["_idx"], "_file"].astype("str").to_numpy(),
                                  row=raw[t].loc[r["_idx"], "_row"].to_numpy())[REJECT_COLUMNS]
                         for t, r in rej.items()], ignore_index=True)
    kab = {int(i): sorted(g.unique()) for i, g in F.groupby("_pair", observed=True)["kode_kabupaten"]}
    rules = {t: {k: int(v) for k, v in r.drop_duplicates(["_idx", "rule"])["rule"].value_counts().items()}
             for t, r in rej.items()}
    return {"families": families, "members": members, "rejects": rejects, "rules": rules, "accounting": accounting,
            "inputs": _inputs(raws, rounds, per_file, kab, f_conv | m_conv), "applied": applied, "links": links,
            "design": design}
