"""Reading an export with a mapping (:mod:`pk2d.mapping`), and reading one without the contract.

:func:`read_mapped` is what :func:`pk2d.rawio.read_table` calls for a file a mapping covers: the
header row (the contract's search of :mod:`pk2d.rawfile`, or, for an export renamed throughout, the row
naming the most of the mapping's headers), the cells, then :func:`apply_mapping`: renames, splits,
joins, constants and recodes, on distinct values, so that the contract reads the result as if the file
had been written for it. :func:`init_template` writes the commented template of ``pk2d map --init``
from a file's plain first rows. Neither ever puts a value of a personal column in a message or a
template.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import parse, rawfile, rawio
from .errors import InputFileError
from .mapping import TableMapping, _specs, answer_key, nh, show, understood

SHOWN = 20         # unmapped answers listed in a message
TOP = 10           # answers shown per column in a template
LOW = 20           # at most this many distinct answers: a column of answers (a recode skeleton)
_DELIMITERS = (",", ";", "\t", "|")


def _plain(spec: dict) -> bool:
    return spec["type"] == "id16" or bool(spec.get("personal") and spec["type"] == "str")


def read_mapped(tm: TableMapping, path, table: str) -> tuple[list[str], pd.DataFrame, int, dict, list[int]]:
    """Read ``path`` with ``tm`` applied: header names, cells ``c0``..., the spreadsheet row of the first
    data row, how the file was read (``info["mapping"]`` names the mapping) and the rows with a wrong
    field count (the tuple :func:`pk2d.rawio.read_table` builds its table from)."""
    path, shifted = Path(path), []
    if path.suffix.lower() == ".xlsx":
        names, frame, first_row, info = _layout(tm, path, table, xlsx=True)
    else:
        names, skip, first_row, info = _layout(tm, path, table, xlsx=False)
        frame, shifted = rawfile.read_csv(path, len(names), skip, info, _wanted(tm, names))
    names, frame = apply_mapping(tm, path, names, frame)
    return names, frame, first_row, info | {"mapping": tm.source.name}, shifted


def _wanted(tm: TableMapping, names: list[str]) -> dict[int, bool]:
    """Columns of a CSV to read: position -> plain text (identifiers, names) or dictionary-encoded."""
    specs, hmap, feeds = _specs(tm.table), rawio.header_map(tm.table), tm.feeds()
    ren = {nh(s): t for s, t in tm.columns.items()}
    out = {}
    for i, name in enumerate(names):
        k = nh(name)
        if not k:
            out[i] = False
        elif k in ren or k in feeds:
            out[i] = any(_plain(specs[c]) for c in [*([ren[k]] if k in ren else []), *feeds.get(k, [])])
        elif k in hmap:
            out[i] = _plain(specs[hmap[k]])
    return dict(sorted(out.items()))


def _layout(tm: TableMapping, path: Path, table: str, *, xlsx: bool):
    """The contract's header search (:mod:`pk2d.rawfile`); where it finds no header row, the row that
    names the most of the mapping's source headers and the contract's (an export renamed throughout)."""
    try:
        return rawfile.read_xlsx(path, table) if xlsx else rawfile.csv_layout(path, table)
    except InputFileError as exc:
        need = max(1, min(rawfile.MIN_HEADER_MATCH, len(tm.sources())))
        specs = _specs(table)
        kinds = {nh(s): {} for s in tm.sources()} | {k: specs[c] for k, c in rawio.header_map(table).items()} | {
            nh(s): specs[t] for s, t in tm.columns.items()}
        try:
            return (rawfile.read_xlsx(path, table, known=kinds, need=need) if xlsx
                    else rawfile.csv_layout(path, table, known=kinds, need=need))
        except InputFileError:
            raise exc from None


def _text(s: pd.Series) -> pd.Series:
    """Cells as the reader cleans them (spaces, missing spellings), as plain text."""
    out = rawio._clean_cells(s)
    return out.astype("object").where(out.notna(), None)


def apply_mapping(tm: TableMapping, path, names: list[str], frame: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """``names`` and cells ``c0``... of a file as the contract reads them: the mapping's renames, splits,
    joins, constants and recodes applied (on distinct values). Rows that repeat the file's header become
    rows repeating the new header, and blank rows stay blank, so that the reader skips and counts them
    as without a mapping. Raises :class:`~pk2d.errors.MappingError` for a mapped header missing from
    the file, a contract column both in the file and made by the mapping, and answers that neither the
    recode lists nor the contract reads (with their counts; values of personal columns never shown)."""
    path = Path(path)
    present = {i: n for i, n in enumerate(names) if f"c{i}" in frame}
    by_key = {nh(n): i for i, n in present.items() if nh(n)}
    missing = [s for k, s in tm.sources().items() if k not in {nh(n) for n in names}]
    if missing:
        raise tm.fail(f"file {path.name}: mapped header(s) {', '.join(show(m) for m in missing)} not in the file.",
                      "correct the header in the mapping (headers match ignoring case, spaces and punctuation), or "
                      "export the file again with that column.", key="columns")
    hmap, made = rawio.header_map(tm.table), set(tm.made())
    sources = set(tm.sources())
    for k, i in by_key.items():
        if k not in sources and hmap.get(k) in made:
            raise tm.fail(f"file {path.name}: its header {show(present[i])} is the contract column '{hmap[k]}' "
                          f"already, and the mapping makes '{hmap[k]}' too.",
                          "map only one of them: delete the entry from the mapping, or the column from the file.",
                          key="columns")
    cells = {i: _text(frame[f"c{i}"]) for i in present}
    blank = np.ones(len(frame), dtype=bool)
    for v in cells.values():
        blank &= v.isna().to_numpy() | (v.fillna("") == "").to_numpy()
    named = [i for i in present if nh(present[i])]
    same = sum((cells[i].fillna("").str.lower() == present[i].strip().lower()).to_numpy(dtype="int64") for i in named)
    header_rows = (np.asarray(same) >= max(2, 0.8 * len(named))) if named else np.zeros(len(frame), bool)
    out: dict[str, pd.Series] = {}
    for i, n in present.items():
        k = nh(n)
        if k in {nh(s) for s in tm.split} or (k in tm.feeds() and k not in {nh(s) for s in tm.columns}):
            continue  # consumed by a split or join
        target = next((t for s, t in tm.columns.items() if nh(s) == k), None)
        out[target or n] = frame[f"c{i}"]
    for s, sp in tm.split.items():
        for col, part in zip(sp.into, sp.parts(cells[by_key[nh(s)]])):
            out[col] = part
    for col, j in tm.join.items():
        out[col] = j.value([cells[by_key[nh(s)]] for s in j.sources])
    for col, value in tm.constants.items():
        out[col] = pd.Series(value, index=frame.index, dtype="str").where(~blank, None)
    header_of = {t: s for s, t in tm.columns.items()}
    for col, rules in tm.recode.items():
        if col in out:
            out[col] = _recode(tm, path, col, out[col], rules, header_of.get(col, col), ~blank & ~header_rows)
    new_names = list(out)
    result = pd.DataFrame({f"c{i}": (out[n].astype("object").where(~header_rows, n) if header_rows.any() else out[n])
                           for i, n in enumerate(new_names)}, index=frame.index)
    return new_names, result


def _number_key(key: str) -> str:
    """A numeric answer key without leading zeros or a ".0" ("04", "4.0" -> "4"), as the contract reads codes."""
    m = re.fullmatch(r"0*([0-9]+)(?:[.,]0+)?", key)
    return m.group(1) if m else key


def _safe(value, n: int) -> str:
    """An answer for a message: shown when it looks like an answer code (at most three characters, or
    seen twice or more with no run of six digits), else only what it looks like: a misplaced name or
    phone number never reaches a message."""
    from .validate import shape

    text = str(value)
    if len(text) <= 3 or (n >= 2 and not re.search(r"[0-9]{6}", text) and len(text) <= 20):
        return show(text)
    return "(" + shape(pd.Series([text], dtype="str")).iloc[0].split(" [")[0] + ")"


def _recode(tm: TableMapping, path: Path, col: str, values: pd.Series, rules, header: str,
            rows: np.ndarray) -> pd.Series:
    """``values`` of ``col`` recoded by ``rules`` (answer key -> contract answer or None); answers neither
    listed nor read by the contract (in ``rows``) are an error listing them with their counts."""
    spec = _specs(tm.table)[col]
    text = _text(values)
    rules = {_number_key(k): v for k, v in rules.items()}
    keys = answer_key(text.fillna("")).map(_number_key)
    listed = keys.isin(set(rules)) & text.notna()
    unread = text.notna() & ~listed & rows
    if unread.any():  # in a code column, a number the recode does not list is this system's code, never
        ok = pd.Series(understood(spec, text[unread]), index=text[unread].index)  # the contract's numbered one
        if spec["type"] == "code":
            ok &= ~keys[unread].str.fullmatch(r"[0-9]+").fillna(False).astype(bool)
        unread.loc[ok.index[ok.to_numpy()]] = False
    if unread.any():
        counts = text[unread].value_counts()
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        shown = ", ".join(f"{_safe(v, n)} ({n} row{'s' if n != 1 else ''})" for v, n in counts.head(SHOWN).items())
        more = f" and {len(counts) - SHOWN} more" if len(counts) > SHOWN else ""
        raise tm.fail(f"file {path.name}, column '{col}' (header {show(header)}): {len(counts)} answer(s) neither "
                      f"the recode lists nor the contract reads: {shown}{more}.",
                      f"add them to the recode of '{col}' (an answer recoded to null is missing), or correct them "
                      "in the file.", key=f"recode.{col}")
    recoded = keys.map({k: v for k, v in rules.items()})
    return text.where(~listed, recoded).where(~(listed & recoded.isna()), None)


# ------------------------------------------------------------- pk2d map --init ---
def plain_rows(path) -> tuple[list[str], list[list], dict]:
    """The header and data rows of an export as text, without the contract: the header is the first of
    its first non-empty rows that fills at least 80 % of the cells the fullest of them fills (a title
    block above it fills fewer). ``info``: format, encoding, delimiter or sheet, header row."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "there is no such file." if not path.exists() else "this is not a file.",
                             fix="name the export file (CSV or XLSX) whose header the template is made from.")
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...
            raise InputFileError(path, f"not a readable XLSX workbook ({type(exc).__name__}).",
                                 fix="open it in a spreadsheet program and save it again as .xlsx.") from None
        try:
            rows, info = [], {}
            for ws in wb.worksheets:
                rows = [[rawfile._cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
                if any(c not in (None, "") for r in rows for c in r):
                    info = {"format": "xlsx", "sheet": ws.title}
                    break
        finally:
            wb.close()
    else:
        with open(path, "rb") as fh:
            head = fh.read(65536)
        enc = rawfile.sniff_encoding(path, head) if head.strip() else "utf-8"
        text = path.read_bytes().decode(enc, errors="replace").lstrip("\ufeff")
        first, _, rest = text.partition("\n")
        hint = re.fullmatch(r'\s*"?sep=(.)"?\s*', first)
        text = rest if hint else text
        tops = [line for line in text.splitlines()[:rawfile.SCAN_ROWS * 2] if line.strip()][:rawfile.SCAN_ROWS]
        delim = hint.group(1) if hint else max(_DELIMITERS, key=lambda d: sum(len(rawfile._split(t, d)) for t in tops))
        rows = list(csv.reader(io.StringIO(text), delimiter=delim))
        info = {"format": "csv", "encoding": enc, "delimiter": delim}
    filled = [(i, sum(1 for c in r if c is not None and str(c).strip())) for i, r in enumerate(rows[:200])]
    filled = [(i, n) for i, n in filled if n][:rawfile.SCAN_ROWS]
    if not filled:
        raise InputFileError(path, "the file is empty: no header row.", fix="export the table with its header row.")
    top = max(n for _, n in filled)
    at = next(i for i, n in filled if n >= 0.8 * top)
    header = [str(c if c is not None else "").strip() for c in rows[at]]
    while header and not header[-1]:
        header.pop()
    return header, rows[at + 1:], info | {"header_row": at + 1}


def _guess_table(path: Path, header: list[str]) -> str:
    tokens = set(re.split(r"[^0-9a-z]+", path.stem.lower()))
    patterns = rawio.load_contract()["file_patterns"]
    role = next((t for t in ("anggota", "keluarga") if tokens & set(patterns[t])), None)
    if role:
        return role
    score = {t: len({rawio.header_map(t).get(nh(h)) for h in header} - {None}) for t in rawio.TABLES}
    best = max(score, key=score.get)
    if score[best] and list(score.values()).count(score[best]) == 1:
        return best
    raise InputFileError(path, "neither its name nor its header says whether it holds families (keluarga) or "
                         "members (anggota).", fix="pass --table keluarga or --table anggota.")


def looks_personal(values: pd.Series) -> bool:
    """Values shaped like personal data: mostly 16-digit numbers (NIK, No. KK) or dates (birth dates).

    >>> looks_personal(pd.Series(["6302 0601 0124 0001", "63020601" * 2])), looks_personal(pd.Series(["1", "2"]))
    (True, False)
    """
    v = values.dropna().astype("str")
    if v.empty:
        return False
    ids = v.str.replace(r"[\s'.\-]", "", regex=True).str.fullmatch(r"[0-9]{15,16}").fillna(False).astype(bool)
    return bool(ids.mean() >= 0.5 or parse.parse_date(v).notna().mean() >= 0.5)


def _reading(spec: dict, value: str) -> str:
    """How the contract reads an answer, as a recode target ("???" where it does not)."""
    got = parse.PARSERS[spec["type"]](pd.Series([value], dtype="str"), spec).iloc[0]
    if pd.isna(got):
        return "???"
    return ("Ya" if got else "Tidak") if spec["type"] == "yesno" else json.dumps(str(got), ensure_ascii=False)


def init_template(path, table: str | None = None) -> tuple[str, str]:
    """The commented mapping template of ``pk2d map --init`` for the export ``path``, and its table: each
    header with the contract column it matches (or commented out), the contract columns not matched, the
    answers of the columns with few distinct values (top 10, with counts) as a commented recode skeleton,
    and the formats block. Values of personal columns are never written: of matched columns by the
    contract's ``personal`` flag and type, of the others by their shape (:func:`looks_personal`) and number.
    """
    path = Path(path)
    header, rows, info = plain_rows(path)
    table = table or _guess_table(path, header)
    specs, hmap = _specs(table), rawio.header_map(table)
    matched: dict[int, str] = {}
    for i, h in enumerate(header):
        if hmap.get(nh(h)) and hmap[nh(h)] not in matched.values():
            matched[i] = hmap[nh(h)]
    words = rawio.load_contract()["file_patterns"][table]
    word = next((w for w in re.split(r"[^0-9a-z]+", path.stem.lower()) if w in words), None)
    out = [f"# pk2d mapping written by `pk2d map --init` from the header of {show(path.name)} (table {table}, "
           f"{len(rows)} rows below the header in row {info['header_row']}).",
           "# Check every line, replace each ???, uncomment what applies; then `pk2d map --check THIS_FILE`",
           "# and `pk2d clean --mapping THIS_FILE`. Headers match ignoring case, spaces and dots; answers",
           "# ignoring case. Schema: `pydoc pk2d.mapping`. No value of a personal column is written here.",
           "pk2d_mapping: 1", f"description: {json.dumps(f'Mapping for exports like {path.name}')}",
           "files:", f"  {table}: {json.dumps(f'*{word}*' if word else path.name)}   # file names (glob) it applies to",
           "tables:", f"  {table}:", "    columns:   # header of the file: contract column"]
    recode, evidence = [], {"decimal": {}, "dates": {}}
    for i, h in enumerate(header):
        if not nh(h):
            continue
        cells = rawio._clean_cells(pd.Series([r[i] if i < len(r) else None for r in rows], dtype="str"))
        vc = cells.value_counts()
        canon = matched.get(i)
        spec = specs.get(canon, {})
        if canon:
            out.append(f"      {json.dumps(h, ensure_ascii=False)}: {canon}")
            if spec["type"] in parse.NUMBER_TYPES or spec["type"] == "date":
                ev = (parse.number_evidence if spec["type"] != "date" else parse.date_evidence)(cells.dropna())
                for r, n in ev["proves"].value_counts().items():
                    if r:
                        kind = "dates" if spec["type"] == "date" else "decimal"
                        evidence[kind][r] = evidence[kind].get(r, 0) + int(n)
            shown = spec["type"] in ("yesno", "code") and 0 < len(vc) <= LOW
        else:
            secret = looks_personal(cells) or len(vc) > LOW or len(vc) > max(2, cells.notna().sum() // 2)
            out.append(f"      # {json.dumps(h, ensure_ascii=False)}: ???   # not a contract header; "
                       + ("values not shown (they may be personal data)" if secret else f"{len(vc)} distinct answers"))
            shown = not secret and len(vc) > 0
        if not shown:
            continue
        vc = vc[vc > 1]  # an answer seen once is not shown (a misplaced name or number would be)
        recode.append(f"      # {canon or '???'}:   # header {json.dumps(h, ensure_ascii=False)}"
                      + (f" ({parse.TYPE_WORDS.get(spec['type'], spec['type'])})" if canon else
                         ": map the header under columns first, then name its contract column here"))
        for value, n in list(vc.items())[:TOP]:
            target = _reading(spec, value) if canon else "???"
            recode.append(f"      #   {json.dumps(str(value), ensure_ascii=False)}: {target}   # {n} rows"
                          + ("; the contract reads it so already" if target != "???" else ""))
        if len(vc) > TOP:
            recode.append(f"      #   ... {len(vc) - TOP} more answers")
    missing = [c for c in specs if c not in matched.values()]
    if missing:
        req = [c for c in missing if specs[c].get("required")]
        out.append("    # contract columns no header matches yet: required: " + (", ".join(req) or "-")
                   + "; optional: " + (", ".join(c for c in missing if c not in req) or "-"))
    out += ["    recode:    # answer of the file: the contract's answer (null = missing)", *recode,
            '    # split: {"KODE_WILAYAH": {into: [kode_provinsi, kode_kabupaten, kode_kecamatan, kode_desa], '
            "widths: [2, 4, 6, 10]}}",
            '    # join: {tanggal_wawancara: {from: ["TGL", "BLN", "THN"], format: "{0}/{1}/{2}"}}',
            "    # constants: {putaran: 1, tahun: 2024}",
            "# formats:   # only where pk2d cannot tell from the values (it decides for each file)",
            f'#   decimal: ","   # "," (12,5 and 1.500.000) or "." (12.5 and 1,500,000); {_seen(evidence["decimal"])}',
            f"#   dates: dmy     # dmy (31/12/2024) or mdy (12/31/2024); {_seen(evidence['dates'])}"]
    return "\n".join(out) + "\n", table


def _seen(counts: dict) -> str:
    return ("values seen prove " + ", ".join(f'"{r}" ({n})' for r, n in sorted(counts.items()))) if counts else \
        "no value seen proves either"
