"""The exports of the field tools, read as they come: KoboToolbox and ODK Central / Briefcase
exports of the pk2d form (:mod:`pk2d.form`).

A form with a repeat group (the members) exports as two linked tables:

- **KoboToolbox XLSX**: one sheet for the families (``_index``, ``_uuid``, ``_submission_time``,
  ``_id`` ...) and one per repeat group (``anggota``), whose ``_parent_index`` points at the
  family's ``_index``;
- **KoboToolbox CSV**: the same two tables as two CSV files (Kobo writes ``;`` separators);
- **ODK Central / Briefcase CSV**: ``FORM.csv`` for the families (``KEY`` = the instance id,
  ``SubmissionDate``, ``SET-OF-anggota``) and ``FORM-anggota.csv`` for the members, whose
  ``PARENT_KEY`` is the family's ``KEY``.

Column names carry the group path (``wilayah/kode_desa``, ``wilayah-kode_desa``) or not; answers
are choice names (``ya``, ``kepala``) or labels (``Ya``, ``Kepala Keluarga``): the contract accepts
both. The members' No. KK is their family's. An edited submission replaces the one it names in
``meta/deprecatedID`` (the latest of a chain wins); the replaced rows are counted as superseded.
The tools' own columns are dropped; those that are personal (device and SIM ids, phone numbers,
user and enumerator names, GPS points of houses) are dropped by the same rule as names and birth
dates, and only their *column names* are recorded.

>>> is_metadata("_submission_time"), is_metadata("meta/instanceID"), is_metadata("rt")
(True, True, False)
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import rawfile, rawio
from .errors import InputFileError

KOBO_LINKS = ("_index", "_parent_index")
ODK_LINKS = ("KEY", "PARENT_KEY")
#: columns the tools add; personal ones are dropped the same way, and named in the log as personal
METADATA = {
    "_id", "_uuid", "_submission_time", "_index", "_parent_index", "_parent_table_name", "_validation_status",
    "_notes", "_status", "__version__", "_version_", "_tags", "_xform_id_string", "_attachments", "_duration",
    "_submission__id", "_submission__uuid", "_submission__submission_time", "_submission__validation_status",
    "_submission__notes", "_submission__status", "_submission___version__", "_submission__tags",
    "KEY", "PARENT_KEY", "SubmissionDate", "SubmitterID", "Status", "ReviewState", "Edits", "FormVersion",
    "AttachmentsPresent", "AttachmentsExpected", "isValidated", "start", "end", "today", "instanceID",
    "deprecatedID", "instanceName", "audit", "formhub/uuid", "uuid",
    "umur_hitung", "kepala_hitung", "jumlah_kepala", "cek_kepala_keluarga",  # pk2d.form.HELPERS
}
PERSONAL_METADATA = {"deviceid", "DeviceID", "phonenumber", "simserial", "subscriberid", "username", "email",
                     "SubmitterName", "_submitted_by", "_submission__submitted_by", "_geolocation", "enumerator",
                     "nama_petugas", "petugas", "gps", "lokasi", "koordinat"}
_GPS_PARTS = re.compile(r"(?i)(^|[_/-])(latitude|longitude|altitude|precision|lat|lon|lng|gps|geo\w*)$")
_GEOPOINT = re.compile(r"^-?[0-9]{1,3}\.[0-9]+ -?[0-9]{1,3}\.[0-9]+( [0-9.-]+){0,2}$")


def _leaf(name: str) -> str:
    """The question name of an exported column: the last part of its group path."""
    return re.split(r"[/-]", str(name).strip())[-1] if not str(name).startswith("SET-OF-") else str(name)


def is_metadata(name: str) -> bool:
    """A column a tool adds (not a question of the form)."""
    name = str(name).strip()
    return name in METADATA or _leaf(name) in METADATA or name.startswith("SET-OF-") or name.startswith("meta")


def is_personal_metadata(name: str, values: pd.Series | None = None) -> bool:
    """Device and SIM ids, phone numbers, user names, GPS points: personal, never kept."""
    leaf = _leaf(name)
    if name in PERSONAL_METADATA or leaf in PERSONAL_METADATA or _GPS_PARTS.search(str(name)):
        return True
    if values is not None:
        v = values.dropna().astype("str").head(50)
        return bool(len(v)) and bool(v.str.fullmatch(_GEOPOINT.pattern).mean() > 0.5)
    return False


@dataclass(frozen=True)
class ToolExport:
    """One export of the pk2d form: the families table and the members table (two sheets of one
    workbook, or two files)."""

    kind: str                     # "kobo-xlsx", "kobo-csv", "odk-csv"
    main: Path
    repeat: Path
    main_sheet: str | None = None
    repeat_sheet: str | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys((self.main, self.repeat)))


# ----------------------------------------------------------------- discovery ---
def _csv_head(path: Path) -> tuple[list[str], str, str] | None:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if not head.strip() or head.startswith(b"PK\x03\x04") or b"\x00" in head:
        return None
    enc = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        first = head.split(b"\n", 1)[0].rstrip(b"\r").decode(enc)
    except UnicodeDecodeError:
        return None
    delim = max([",", ";", "\t"], key=first.count)
    return next(csv.reader([first], delimiter=delim)), delim, enc


def _role(names: list[str]) -> tuple[str, str] | None:
    """("kobo"|"odk", "main"|"repeat") from a header, or None for any other table."""
    s = {str(n).strip() for n in names}
    if "_parent_index" in s:
        return "kobo", "repeat"
    if "_index" in s and s & {"_uuid", "_id", "_submission_time"}:
        return "kobo", "main"
    if "PARENT_KEY" in s and "KEY" in s:
        return "odk", "repeat"
    if "KEY" in s and (s & {"SubmissionDate", "meta-instanceID", "instanceID"} or any(n.startswith("SET-OF-")
                                                                                      for n in s)):
        return "odk", "main"
    return None


def find_exports(raw_dir) -> list[ToolExport]:
    """The tools' exports in ``raw_dir`` (each file's header, or each sheet's first row, is looked at).

    Raises :class:`~pk2d.errors.InputFileError` for a members table without its families table (or
    the other way round)."""
    raw_dir, found = Path(raw_dir), []
    mains, repeats = {"kobo": [], "odk": []}, {"kobo": [], "odk": []}
    for path in sorted(raw_dir.iterdir()) if raw_dir.is_dir() else []:
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            sheets = _xlsx_heads(path)
            roles = {t: _role(h) for t, h in sheets.items()}
            main = [t for t, r in roles.items() if r == ("kobo", "main")]
            rep = [t for t, r in roles.items() if r == ("kobo", "repeat")]
            if main and rep:
                rep = sorted(rep, key=lambda t: (_anggota_score(sheets[t]), -list(sheets).index(t)))[-1:]
                found.append(ToolExport("kobo-xlsx", path, path, main[0], rep[0]))
            elif main or rep:
                raise InputFileError(path, "this KoboToolbox workbook has " + ("no members sheet (a repeat group "
                                     "sheet with _parent_index)" if main else "no families sheet (with _index)")
                                     + ".", fix="export again from KoboToolbox as XLS with 'Include groups' and "
                                     "all repeat groups (the members are the repeat group 'anggota').")
        elif suffix in (".csv", ".txt"):
            head = _csv_head(path)
            role = _role(head[0]) if head else None
            if role:
                (mains if role[1] == "main" else repeats)[role[0]].append(path)
    for tool in ("kobo", "odk"):
        for m in mains[tool]:
            partner = _partner(m, repeats[tool], tool)
            if partner is None:
                raise InputFileError(m, f"this {'KoboToolbox' if tool == 'kobo' else 'ODK'} export of the families "
                                     "has no members file (the repeat group 'anggota').",
                                     fix="download the export with its repeat groups (ODK Central: 'Download "
                                         "all data' as a ZIP; KoboToolbox: XLS) and put every file of it here.")
            repeats[tool].remove(partner)
            found.append(ToolExport(f"{tool}-csv", m, partner))
        if repeats[tool]:
            raise InputFileError(repeats[tool][0], "this members table of a tool's export has no families table.",
                                 fix="put the families file of the same export (with KEY / _index) beside it.")
    return found


def _anggota_score(names: list[str]) -> int:
    return sum(_leaf(n) in {"nik", "hubungan", "nama"} for n in names)


def _partner(main: Path, repeats: list[Path], tool: str) -> Path | None:
    named = [r for r in repeats if r.stem.startswith(main.stem + "-")] if tool == "odk" else []
    if named:
        return sorted(named, key=lambda r: ("anggota" not in r.stem.lower(), r.name))[0]
    words = {*rawio.load_contract()["file_patterns"]["anggota"], *rawio.load_contract()["file_patterns"]["keluarga"]}

    def stem(p):
        return "_".join(t for t in re.split(r"[^0-9a-z]+", p.stem.lower()) if t and t not in words)
    same = [r for r in repeats if stem(r) == stem(main)]
    return same[0] if same else (repeats[0] if len(repeats) == 1 else None)


def _xlsx_heads(path: Path) -> dict[str, list[str]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # not a workbook: the ordinary reader says so
        return {}
    try:
        return {ws.title: [rawfile._cell_text(v) or "" for v in next(ws.iter_rows(max_row=1, values_only=True), ())]
                for ws in wb.worksheets}
    finally:
        wb.close()


# ------------------------------------------------------------------- reading ---
def _read(path: Path, sheet: str | None) -> pd.DataFrame:
    """A table of the export as text, columns as exported."""
    if sheet is None:
        _names, delim, enc = _csv_head(path)
        return pd.read_csv(path, sep=delim, dtype=str, keep_default_na=False, encoding=enc)
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()
    header = [rawfile._cell_text(v) or "" for v in rows[0]]
    return pd.DataFrame([[rawfile._cell_text(v) for v in r[:len(header)]] + [None] * (len(header) - len(r))
                         for r in rows[1:]], columns=header, dtype="str")


def _instance_ids(df: pd.DataFrame, tool: str) -> tuple[pd.Series, pd.Series]:
    """(instance id, the id it replaces) of each submission row."""
    def col(*names):
        return next((df[c] for c in df.columns if c in names or _leaf(c) in names), pd.Series(None, index=df.index))
    # ODK Central's KEY stays the first version's id after an edit; meta-instanceID is the version's own
    own = col("instanceID")
    if own.isna().all():
        own = df["KEY"] if tool == "odk" else ("uuid:" + df["_uuid"].astype("str") if "_uuid" in df else own)
    return own.astype("str"), col("deprecatedID").replace("", None)


def _superseded(df: pd.DataFrame, tool: str) -> pd.Series:
    """Rows replaced by an edit (their id is another row's deprecatedID), through chains of edits."""
    own, old = _instance_ids(df, tool)
    return own.isin(set(old.dropna()))


def _prepare(df: pd.DataFrame, path: Path, table: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Keep the form's questions (named by their leaf), drop the tools' columns; the personal ones by name."""
    keep, personal, other = {}, [], []
    df = df.loc[:, [bool(str(c).strip()) and not str(c).startswith("Unnamed: ") for c in df.columns]]
    for c in df.columns:  # (columns without a header, e.g. a stray cell beside the table, are left out)
        if is_personal_metadata(c, df[c]):
            personal.append(str(c))
        elif is_metadata(c):
            other.append(str(c))
        else:
            leaf = _leaf(c)
            if leaf in keep:
                raise InputFileError(path, f"two columns of the export are the question '{leaf}' ('{keep[leaf][0]}' "
                                     f"and '{c}').", column=leaf, fix="export again with the group names included.")
            keep[leaf] = (str(c), df[c])
    frame = pd.DataFrame({leaf: s for leaf, (_c, s) in keep.items()}, index=df.index)
    return frame, personal, other


def read_export(exp: ToolExport) -> tuple[rawio.RawTable, rawio.RawTable]:
    """The families and members of an export as the clean stage's raw tables (row numbers of their own
    file or sheet; superseded submissions left out and counted in ``info["superseded"]``).

    >>> fam, mem = read_export(find_exports("data/raw")[0])  # doctest: +SKIP
    """
    tool = exp.kind.split("-")[0]
    main, rep = _read(exp.main, exp.main_sheet), _read(exp.repeat, exp.repeat_sheet)
    link, parent = KOBO_LINKS if tool == "kobo" else ODK_LINKS
    for df, p, col in ((main, exp.main, link), (rep, exp.repeat, parent)):
        if col not in df.columns:
            raise InputFileError(p, f"the export has no '{col}' column linking members to families.", column=col,
                                 fix="export again with the tool's own columns (_index/_parent_index or KEY/PARENT_KEY).")
    old = _superseded(main, tool)
    main_rows = pd.Series(range(2, len(main) + 2), index=main.index)
    fam, f_personal, _f_meta = _prepare(main, exp.main, "keluarga")
    if "no_kk" not in fam:
        raise InputFileError(exp.main, "the families table of the export has no question 'no_kk'.", column="no_kk",
                             fix="use the form made by `pk2d form` (its questions are named like the contract's "
                                 "columns).")
    kk = pd.Series(fam["no_kk"].to_numpy(), index=main[link].astype("str").to_numpy())
    gone = set(main.loc[old, link].astype("str"))
    mem, m_personal, _m_meta = _prepare(rep, exp.repeat, "anggota")
    parent_of = rep[parent].astype("str")
    orphans = ~parent_of.isin(set(kk.index))
    if orphans.any():
        raise InputFileError(exp.repeat, f"{int(orphans.sum())} member rows point at no family of the export (column "
                             f"'{parent}', first at row {int(orphans.to_numpy().argmax()) + 2}).", column=parent,
                             fix="export the families and members tables of the same download together.")
    mem.insert(0, "no_kk", parent_of.map(kk[~kk.index.duplicated()]).to_numpy())
    rep_old = parent_of.isin(gone)
    out = []
    for path, sheet, frame, drop, personal, table in (
            (exp.main, exp.main_sheet, fam, old.to_numpy(), f_personal, "keluarga"),
            (exp.repeat, exp.repeat_sheet, mem, rep_old.to_numpy(), m_personal, "anggota")):
        names = list(frame.columns)
        cells = frame.set_axis([f"c{i}" for i in range(len(names))], axis=1).astype("str")
        cells = cells.where(frame.notna().to_numpy(), None)[~drop]
        info = {"format": exp.kind, **({"sheet": sheet} if sheet else {}), "superseded": int(drop.sum()),
                "personal_metadata_dropped": personal}
        rows = (main_rows if table == "keluarga" else pd.Series(range(2, len(frame) + 2))).to_numpy()[~drop]
        out.append(rawio.table_from_frame(path, table, names, cells, 2, info, rows=rows))
    return out[0], out[1]


def describe(exp: ToolExport) -> str:
    """One line naming the export, for logs.

    >>> describe(ToolExport("odk-csv", Path("f.csv"), Path("f-anggota.csv")))
    'odk-csv: f.csv + f-anggota.csv'
    """
    if exp.main == exp.repeat:
        return f"{exp.kind}: {exp.main.name} (sheets {exp.main_sheet}, {exp.repeat_sheet})"
    return f"{exp.kind}: {exp.main.name} + {exp.repeat.name}"

