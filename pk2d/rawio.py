"""Read raw PK2D survey exports (CSV/TXT/XLSX) as the contract describes them.

Everything here is about *files*: finding the families/members pair of each survey
round, sniffing delimiter and encoding, mapping header spellings to canonical names,
and raising :class:`pk2d.errors.InputFileError` when a file cannot be used at all.
Values stay text (strings, or categoricals of strings for the low-cardinality columns;
stripped, and "", "-", "NA", "null"... become missing); typing them is :mod:`pk2d.cleaning`'s job.

Row numbers follow the spreadsheet convention: the header is row 1, so the first data
row is row 2. Blank lines are counted, as a spreadsheet shows them, and then skipped;
only a line break inside a quoted value makes a row number differ from the line number.
"""
from __future__ import annotations

import functools
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import io as pio
from . import paths, rawfile
from .errors import InputFileError

TABLES = ("keluarga", "anggota")
EXTENSIONS = {".csv", ".txt", ".xlsx"}
MISSING = {"", "-", "--", "na", "n/a", "#n/a", "null", "nan"}
REGION_WIDTHS = {"provinsi": (2,), "kabupaten": (2, 2), "kecamatan": (2, 2, 2), "desa": (2, 2, 2, 4)}


# ---------------------------------------------------------------- contract ---
@functools.lru_cache(maxsize=8)
def load_contract(path=paths.CONTRACT_FILE) -> dict:
    """The raw-data contract as a dict (cached: treat it as read-only).

    >>> load_contract()["tables"]["keluarga"]["key"]
    ['no_kk']
    """
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def columns(table: str, contract: dict | None = None) -> list[dict]:
    """Column specs of ``table`` ("keluarga" or "anggota"), in contract order.

    >>> columns("anggota")[1]["name"], columns("anggota")[1]["type"]
    ('nik', 'id16')
    """
    return (contract or load_contract())["tables"][table]["columns"]


def normalise_header(name) -> str:
    """Header key: lower case, compatibility-normalised ("m²" -> "m2"), every character but
    letters and digits removed (BOM, spaces, dots, dashes, underscores, slashes, brackets).

    >>> normalise_header(" No. KK "), normalise_header("Luas Lantai (m²)"), normalise_header("Kabupaten/Kota")
    ('nokk', 'luaslantaim2', 'kabupatenkota')
    """
    return re.sub(r"[^0-9a-z]", "", unicodedata.normalize("NFKD", str(name)).lower())


def header_map(table: str) -> dict[str, str]:
    """Normalised header spelling -> canonical column name, for ``table``.

    >>> header_map("keluarga")[normalise_header("Tgl Wawancara")]
    'tanggal_wawancara'
    """
    out: dict[str, str] = {}
    for col in columns(table):
        for spelling in [col["name"], *col.get("aliases", [])]:
            key = normalise_header(spelling)
            if out.setdefault(key, col["name"]) != col["name"]:
                raise ValueError(f"contract: header {spelling!r} is ambiguous in table {table}")
    return out


def _spellings(table: str, name: str) -> str:
    col = next(c for c in columns(table) if c["name"] == name)
    return ", ".join(repr(s) for s in [col["name"], *col.get("aliases", [])])


# ----------------------------------------------------------------- regions ---
@functools.lru_cache(maxsize=2)
def _shipped_regions(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


REGION_LIST_GLOB = "*wilayah*.csv"


def load_regions(path=None, *, raw_dir=None) -> pd.DataFrame:
    """Reference region list (``pk2d/data/wilayah.csv``): kode, tingkat, nama, kode_induk; with
    ``raw_dir``, extended by the team's own list of kecamatan and desa, any ``*wilayah*.csv`` there
    with the same columns (so that a well-formed but unknown village code is caught).

    >>> load_regions().set_index("kode").loc["63.02", "nama"]
    'Kabupaten Kotabaru'
    """
    ref = _shipped_regions(path or paths.REGIONS_FILE)
    lists = region_list_files(raw_dir) if raw_dir is not None else []
    frames = [ref]
    for f in lists:
        extra = _read_region_list(f)
        missing = {"kode", "tingkat", "nama"} - set(extra.columns)
        if missing:
            raise InputFileError(f, f"a region list needs the columns kode, tingkat, nama (missing: "
                                 f"{', '.join(sorted(missing))}).", column=sorted(missing)[0],
                                 fix="use the columns of pk2d/data/wilayah.csv: kode,tingkat,nama,kode_induk.")
        bad = ~extra["tingkat"].isin(list(REGION_WIDTHS))
        if bad.any():
            raise InputFileError(f, f"row {int(np.flatnonzero(bad.to_numpy())[0]) + 2}: tingkat must be one of "
                                 f"{', '.join(REGION_WIDTHS)}.", column="tingkat", fix="correct the level.")
        codes = pd.concat([normalise_region(g["kode"], lvl) for lvl, g in extra.groupby("tingkat")]).reindex(extra.index)
        if codes.isna().any():
            row = int(np.flatnonzero(codes.isna().to_numpy())[0]) + 2
            raise InputFileError(f, f"row {row}: the code is not a Kemendagri code of its level (tingkat).",
                                 column="kode", fix="write codes like 63.02.06 (kecamatan) or 63.02.06.2012 (desa).")
        frames.append(extra.assign(kode=codes, sumber=extra.get("sumber", f.name)))
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else ref
    return out.drop_duplicates(["kode", "tingkat"], keep="first", ignore_index=True)


def region_list_files(raw_dir) -> list[Path]:
    """The team's region lists in ``raw_dir`` (inputs of the clean stage): ``*wilayah*.csv`` files whose
    names have no families/members word (those are exports)."""
    if not Path(raw_dir).is_dir():
        return []
    pats = load_contract()["file_patterns"]
    words = {*pats["keluarga"], *pats["anggota"]}
    return sorted(p for p in Path(raw_dir).glob(REGION_LIST_GLOB)
                  if not set(re.split(r"[^0-9a-z]+", p.stem.lower())) & words)


def _read_region_list(path: Path) -> pd.DataFrame:
    """A region list as text, in UTF-8 or Windows-1252, comma, semicolon or tab separated."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    first = text.split("\n", 1)[0]
    sep = max([",", ";", "\t"], key=first.count)
    frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame.apply(lambda c: c.str.strip())


def on_uniques(parse):
    """Run a vectorised parser on the distinct values only and broadcast the result back:
    survey columns hold few distinct spellings, so millions of cells cost one pass over them.

    >>> on_uniques(lambda s: s.str.upper())(pd.Series(["ya", "ya", None, "tidak"])).tolist()
    ['YA', 'YA', nan, 'TIDAK']
    """
    @functools.wraps(parse)
    def wrapper(values: pd.Series, *args, **kwargs):
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes, uniques = values.cat.codes.to_numpy(), values.cat.categories
        else:
            codes, uniques = pd.factorize(values)
        parsed = parse(pd.Series(uniques, dtype="str"), *args, **kwargs)
        return pd.Series(parsed.array.take(codes, allow_fill=True), index=values.index, name=values.name)
    return wrapper


@on_uniques
def normalise_region(values: pd.Series, level: str) -> pd.Series:
    """Kemendagri code in dotted canonical form, or missing when not understood.

    Spaces are dropped; undotted codes need the full digit count; dotted codes with
    three or more parts get each part zero-padded. Two-part codes like "63.1" stay
    invalid (it could be 63.01, or 63.10 after a spreadsheet ate the zero).

    >>> normalise_region(pd.Series(["6302062001", "63.2.6.2001", "63.02.06.2001"]), "desa").tolist()
    ['63.02.06.2001', '63.02.06.2001', '63.02.06.2001']
    """
    widths = REGION_WIDTHS[level]
    t = values.str.replace(r"[ \t]+", "", regex=True).str.replace("-", ".", regex=False)
    t = t.str.replace(rf"^([0-9]{{{sum(widths)}}})\.0+$", r"\1", regex=True)  # "6302.0" from a float
    loose = len(widths) >= 3
    plain = t.str.extract("^" + "".join(rf"(?P<p{i}>[0-9]{{{w}}})" for i, w in enumerate(widths)) + "$")
    dotted = t.str.extract("^" + r"\.".join(rf"(?P<p{i}>[0-9]{{{1 if loose else w},{w}}})"
                                            for i, w in enumerate(widths)) + "$")
    parts = plain.combine_first(dotted)
    out = parts["p0"].str.zfill(widths[0])
    for i, w in enumerate(widths[1:], start=1):
        out = out + "." + parts[f"p{i}"].str.zfill(w)
    return out.astype("str")


def check_regions(raw: "RawTable") -> None:
    """File-level check: every well-formed province/kabupaten code is in wilayah.csv.

    >>> check_regions(read_table("data/raw/x_keluarga.csv", "keluarga"))  # doctest: +SKIP
    """
    ref = load_regions()
    for col, level in (("kode_provinsi", "provinsi"), ("kode_kabupaten", "kabupaten")):
        codes = normalise_region(raw.data[col], level)
        unknown = codes.notna() & ~codes.isin(set(ref.loc[ref["tingkat"] == level, "kode"]))
        if unknown.any():
            bad = sorted(codes[unknown].unique())
            first = int(raw.data.loc[unknown, "_row"].iloc[0])
            raise InputFileError(
                raw.path, f"unknown {level} code(s) {', '.join(bad[:5])} in column '{col}' "
                f"({int(unknown.sum())} rows, first at row {first}); codes must be Kemendagri codes "
                f"listed in {paths.REGIONS_FILE.name}.", column=col,
                fix=f"correct the code in the file, or add the region to pk2d/data/{paths.REGIONS_FILE.name} "
                "if it is genuinely missing there.")


# --------------------------------------------------------------- discovery ---
@dataclass(frozen=True)
class FilePair:
    """One survey round's families file and its members partner (``tool``: an export of a field
    tool, :class:`pk2d.tools.ToolExport`, whose two tables may be sheets of one workbook)."""
    stem: str
    keluarga: Path
    anggota: Path
    tool: object = None


def discover(raw_dir) -> list[FilePair]:
    """Pair families and members files by name: the same stem once the words of
    ``file_patterns`` are removed (a members word wins: "anggota_keluarga" = members).

    >>> discover("data/raw")  # doctest: +SKIP
    [FilePair(stem='sintetis_kotabaru_2024_putaran1', keluarga=..., anggota=...)]
    """
    raw_dir = Path(raw_dir)
    if raw_dir.is_file():
        raise InputFileError(raw_dir, "this is a file; the raw-data option names the folder that holds the exports.",
                             fix=f"pass its folder instead (--raw {raw_dir.parent}).")
    if not raw_dir.is_dir():
        raise InputFileError(raw_dir, "the raw-data folder does not exist.",
                             fix="create it and put the families and members exports in it.")
    from . import tools

    exports = tools.find_exports(raw_dir)
    taken = {p for e in exports for p in e.files}
    patterns, found = load_contract()["file_patterns"], {}
    for path in sorted(raw_dir.iterdir()):
        if not path.is_file() or path.suffix.lower() not in EXTENSIONS or path.name.startswith((".", "~$")):
            continue
        if path in taken:
            continue
        tokens = [t for t in re.split(r"[^0-9a-z]+", path.stem.lower()) if t]
        role = next((r for r in ("anggota", "keluarga") if set(tokens) & set(patterns[r])), None)
        if role:  # the stem: the name without the role words
            stem = "_".join(t for t in tokens if t not in {*patterns["anggota"], *patterns["keluarga"]})
            found.setdefault(stem, {"keluarga": [], "anggota": []})[role].append(path)
    for role, other in (("keluarga", "anggota"), ("anggota", "keluarga")):
        for stem, roles in sorted(found.items()):
            if len(roles[role]) > 1:
                raise InputFileError(roles[role][1], f"two {role} files for the same round: "
                                     f"{', '.join(p.name for p in roles[role])}.", fix="keep only one of them.")
            if roles[role] and not roles[other]:
                words = r"(?i)(?<![0-9a-z])(" + "|".join(patterns[role]) + r")(?![0-9a-z])"
                partner = re.sub(words, other, roles[role][0].name, count=1)
                raise InputFileError(roles[role][0], f"this {role} file has no {other} partner file.",
                                     fix=f"add the {other} file of the same round, named like this one with the "
                                     f"{role} word replaced (e.g. '{partner}'; accepted words: "
                                     f"{', '.join(patterns[other])}).")
    pairs = [FilePair(stem, r["keluarga"][0], r["anggota"][0]) for stem, r in sorted(found.items())]
    pairs += [FilePair(e.main.stem, e.main, e.repeat, e) for e in exports]
    if not pairs:
        raise InputFileError(raw_dir, "no families/members export files (.csv, .txt, .xlsx) found.",
                             fix="put pairs like 'desa_2024_putaran1_keluarga.csv' + "
                             "'desa_2024_putaran1_anggota.csv' in this folder.")
    return pairs


def input_files(raw_dir) -> list[Path]:
    """The export files :func:`discover` pairs and the team's region lists (what the clean stage
    reads), by name; none when the folder holds no pair.

    >>> [p.name for p in input_files("data/raw")][:1]  # doctest: +SKIP
    ['SINTETIS_kotabaru_2024_putaran1_anggota.csv']
    """
    try:
        pairs = discover(raw_dir)
    except InputFileError:
        return []
    files = {p for pair in pairs for p in (pair.keluarga, pair.anggota)} | set(region_list_files(raw_dir))
    return sorted(files, key=lambda p: p.name)


# ----------------------------------------------------------------- reading ---
@dataclass
class RawTable:
    """One file read as strings: ``data`` has canonical columns plus ``_file``, ``_row``."""
    path: Path
    table: str
    data: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _map_headers(path: Path, table: str, names: list[str]) -> tuple[dict[str, int], list[int]]:
    """Canonical column -> position, and positions of the unknown columns."""
    hmap, mapped, extra = header_map(table), {}, []
    for i, name in enumerate(names):
        canon = hmap.get(normalise_header(name))
        if canon is None:
            extra.append(i)
        elif canon in mapped:
            raise InputFileError(path, f"columns '{names[mapped[canon]]}' and '{name}' are both the column "
                                 f"'{canon}'.", column=canon, fix="delete or rename one of the two columns.")
        else:
            mapped[canon] = i
    return mapped, extra


_INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff]"
_SPACES = "[\u00a0\u2007\u202f\u3000]"


def _clean_cells(s: pd.Series) -> pd.Series:
    """Non-breaking and other unusual spaces become spaces, invisible characters (zero-width space,
    BOM) go; then strip, and the missing spellings ("", "-", "NA", "null"...) become NA.
    Categoricals are cleaned through their categories only."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("str")
        if s.str.contains(f"{_INVISIBLE}|{_SPACES}", regex=True).any():
            s = s.str.replace(_INVISIBLE, "", regex=True).str.replace(_SPACES, " ", regex=True)
        s = s.str.strip()
        return s.mask(s.str.lower().isin(MISSING))
    cats = _clean_cells(pd.Series(s.cat.categories, dtype="str"))
    codes, uniques = pd.factorize(cats)
    lookup = np.append(codes, -1)  # code -1 (missing) stays -1
    return pd.Series(pd.Categorical.from_codes(lookup[s.cat.codes.to_numpy()], categories=uniques), index=s.index)


def _repeated_headers(data: pd.DataFrame, headers: dict[str, str]) -> pd.Series:
    """Rows that repeat the header (exports concatenated with their headers): most mapped cells hold
    their column's header text (``headers``: column -> header text of the file, cleaned)."""
    hits = np.zeros(len(data), dtype="int64")
    for c, h in headers.items():
        hits += data[c].eq(h).fillna(False).to_numpy(dtype=bool)
    return pd.Series(hits >= max(2, 0.8 * len(headers)), index=data.index)


def read_table(path, table: str, mapping=None) -> RawTable:
    """Read one export file as strings with canonical column names, plus ``_file`` and ``_row``
    (and ``_shifted``, "1" on a row whose number of fields differs from the header's).

    Low-cardinality columns come back as categoricals (fast on millions of rows). Blank rows and rows
    that repeat the header are skipped and counted in ``info``. ``mapping`` (a
    :class:`pk2d.mapping.Mapping`) renames, splits, joins and recodes the columns of a file it covers
    first (``info["mapping"]`` then names it).

    >>> raw = read_table("data/raw/x_keluarga.csv", "keluarga")  # doctest: +SKIP
    >>> raw.data[["no_kk", "_file", "_row"]].head(1)  # doctest: +SKIP
    """
    path = Path(path)
    specs = {c["name"]: c for c in columns(table)}
    shifted: list[int] = []
    mapped_table = mapping.table_for(path, table) if mapping is not None else None
    if mapped_table is not None:
        names, frame, first_row, info, shifted = mapped_table.read(path, table)
    elif path.suffix.lower() == ".xlsx":
        names, frame, first_row, info = rawfile.read_xlsx(path, table)
    else:
        names, skip, first_row, info = rawfile.csv_layout(path, table)
        mapped, extra = _map_headers(path, table, names)
        wanted = {i: specs[c]["type"] == "id16" or bool(specs[c].get("personal") and specs[c]["type"] == "str")
                  for c, i in mapped.items()} | {i: False for i in extra if not normalise_header(names[i])}
        frame, shifted = rawfile.read_csv(path, len(names), skip, info, dict(sorted(wanted.items())))
    return table_from_frame(path, table, names, frame, first_row, info, shifted)


def table_from_frame(path, table: str, names: list[str], frame: pd.DataFrame, first_row: int, info: dict,
                     shifted=(), rows=None) -> RawTable:
    """The :class:`RawTable` of a file read as text: ``frame`` has columns ``c0``, ``c1``... named by
    ``names`` (its header), its first row is spreadsheet row ``first_row`` (or ``rows`` gives each
    row's number); ``shifted``: positions of rows with a wrong field count. Shared by
    :func:`read_table` and the tools' exports (:mod:`pk2d.tools`).
    """
    path, shifted = Path(path), list(shifted)
    specs = {c["name"]: c for c in columns(table)}
    mapped, extra = _map_headers(path, table, names)
    frame = frame.set_axis(range(len(frame)))
    data = pd.DataFrame({c: _clean_cells(frame[f"c{i}"]) for c, i in mapped.items()}, index=frame.index)
    unnamed = [i for i in extra if not normalise_header(names[i])]
    blank = data.isna().all(axis=1) & frame[[f"c{i}" for i in unnamed]].apply(_clean_cells).isna().all(axis=1)
    blank[shifted] = False
    heads = _clean_cells(pd.Series([names[i] for i in mapped.values()], dtype="str"))
    repeated = _repeated_headers(data, dict(zip(mapped, heads))) & ~blank
    extra = [names[i].strip() for i in extra if normalise_header(names[i])] + [
        f"(tanpa nama / unnamed, kolom {i + 1})" for i in unnamed if _clean_cells(frame[f"c{i}"]).notna().any()]
    data = data.assign(_file=pd.Categorical.from_codes(np.zeros(len(data), dtype="int8"), [path.name]),
                       _row=np.arange(first_row, first_row + len(data), dtype="int64") if rows is None
                       else np.asarray(rows, dtype="int64"))
    if shifted:
        data["_shifted"] = pd.Series(None, index=data.index, dtype="str")
        data.loc[shifted, "_shifted"] = "1"
    data = data[~(blank | repeated).to_numpy()]
    info.update(rows=len(data), blank_rows_skipped=int(blank.sum()), sha256=pio.sha256_file(path))
    if repeated.any():
        info["header_rows_skipped"] = int(repeated.sum())
    if shifted:
        info["rows_with_wrong_field_count"] = len(shifted)
    if data.empty:
        raise InputFileError(path, "no data rows: the file has a header but no families/members in it.",
                             fix="export the table again with its data rows.")
    if len(shifted) > len(data) / 2:
        raise InputFileError(path, f"{len(shifted)} of {len(data)} rows have another number of fields than the "
                             f"header row (first at row {first_row + min(shifted)}).",
                             fix="check the header row (a column name missing or added) and the separator, then "
                                 "export again.")
    missing = [c for c, sp in specs.items() if sp.get("required") and c not in mapped]
    if missing:
        raise InputFileError(path, f"required column '{missing[0]}' is missing"
                             + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "") + ".",
                             column=missing[0], fix=f"add the column; accepted header spellings "
                             f"(case, spaces, dots, dashes and underscores ignored): {_spellings(table, missing[0])}.")
    return RawTable(path, table, data.reset_index(drop=True), extra, info)


def read_pair(pair: FilePair, mapping=None) -> tuple[RawTable, RawTable]:
    """Read both files of a round and run the file-level checks on them (``mapping``: see
    :func:`read_table`).

    >>> fam, mem = read_pair(discover("data/raw")[0])  # doctest: +SKIP
    """
    if pair.tool is not None:
        from .tools import read_export

        fam, mem = read_export(pair.tool)
    else:
        fam, mem = read_table(pair.keluarga, "keluarga", mapping), read_table(pair.anggota, "anggota", mapping)
    check_regions(fam)
    if not {"tanggal_lahir", "umur"} & set(mem.data.columns):
        raise InputFileError(mem.path, "neither 'tanggal_lahir' (birth date) nor 'umur' (age) is present; "
                             "the age of each member cannot be known.", column="umur",
                             fix=f"add one of them; accepted spellings: {_spellings('anggota', 'tanggal_lahir')}"
                             f" or {_spellings('anggota', 'umur')}.")
    return fam, mem


def combine(tables: list[RawTable]) -> pd.DataFrame:
    """Stack the files of one table (``_pair`` = position in ``tables``), keeping categoricals
    categorical when every file has them; a column absent from a file is missing in its rows.

    >>> combine([fam for fam, _mem in map(read_pair, discover("data/raw"))])  # doctest: +SKIP
    """
    frames = [t.data.assign(_pair=i) for i, t in enumerate(tables)]
    out = {}
    for col in dict.fromkeys(c for f in frames for c in f.columns):
        parts = [f[col] if col in f else pd.Series([None] * len(f), dtype="str") for f in frames]
        out[col] = (pd.api.types.union_categoricals([p.array for p in parts])
                    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts)
                    else pd.concat([p.astype("str") if isinstance(p.dtype, pd.CategoricalDtype) else p for p in parts],
                                   ignore_index=True))
    return pd.DataFrame(out)
