"""How one export file is written, and its cells read as text: encoding, delimiter, the row that
holds the header, the sheet that holds the table.

Files from district offices come as Excel-saved CSV, web downloads and workbooks: a title block
above the header, a ``sep=;`` first line, a row-number column without a header, the table on the
second sheet. The header row (and sheet) is the one that names the most columns of the contract;
the causes that make a file unusable are named (a web page saved as .csv, mixed encodings), never
guessed around. Messages name rows and columns, never a cell's value: a misplaced value may be a
name or an identifier.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from . import rawio
from .errors import InputFileError

_CHUNK = 1 << 20
SCAN_ROWS = 30          # rows searched for the header
MIN_HEADER_MATCH = 3    # contract columns a header row must name
_DELIMITERS = (",", ";", "\t", "|")
_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH = re.compile(rb"[\x80-\xff]")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _mixed_encodings(path: Path) -> str | None:
    """Evidence that a file that is not valid UTF-8 still holds UTF-8 text (two encodings in one file)."""
    data = path.read_bytes()
    utf8 = [m.start() for m in _UTF8_SEQ.finditer(data)]
    covered = np.zeros(len(data), bool)
    for m in _UTF8_SEQ.finditer(data):
        covered[m.start():m.end()] = True
    other = [m.start() for m in _HIGH.finditer(data) if not covered[m.start()]]
    if utf8 and other:
        return (f"{len(utf8)} characters are written in UTF-8 (first on line {_line_of(data, utf8[0])}) and "
                f"{len(other)} bytes in another encoding such as Windows-1252 (first on line "
                f"{_line_of(data, other[0])})")
    return None


def sniff_encoding(path: Path, head: bytes) -> str:
    """UTF-16 (BOM), else UTF-8, else Windows-1252, each checked strictly over the whole file.
    A file that is partly UTF-8 and partly something else is refused with the evidence."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for enc in ("utf-8", "cp1252"):  # strict, streamed over the whole file
        dec = codecs.getincrementaldecoder(enc)("strict")
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    dec.decode(chunk)
                dec.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if enc == "cp1252" and (evidence := _mixed_encodings(path)):
            raise InputFileError(path, f"the file mixes two text encodings: {evidence}; read either way, some "
                                 "names would come out garbled (mojibake).",
                                 fix="open each source file in its own encoding and save the combined table once "
                                     "as CSV UTF-8 (or XLSX), then export again.")
        return enc
    return "latin-1"


def _score(table: str, names: list[str]) -> int:
    hmap = rawio.header_map(table)
    return len({hmap[k] for k in map(rawio.normalise_header, names) if k in hmap})


def _split(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim), [])


def _row_numbers(fields: list[list[str]], n: int) -> bool:
    """Most data lines (two in three) one field longer than the header, starting with whole numbers
    that count up (one shifted row among them does not hide the column)."""
    fit = [f for f in fields if len(f) == n + 1 and f[0].strip().isdigit()]
    if not fields or 3 * len(fit) < 2 * len(fields):
        return False
    first = [int(f[0]) for f in fit]
    return len(first) == 1 or all(b > a for a, b in zip(first, first[1:]))


def _other_table(table: str, names: list[str]) -> str | None:
    other = next(t for t in rawio.TABLES if t != table)
    return other if _score(other, names) >= MIN_HEADER_MATCH else None


def _no_header(path: Path, table: str, names_seen: list[list[str]], where: str) -> None:
    other = next((o for names in names_seen if (o := _other_table(table, names))), None)
    if other:
        raise InputFileError(path, f"the header row names the columns of the {other} table, not of the {table} "
                             "table: the file holds the other table.",
                             fix=f"check the file names: the {table} file's name has one of the words "
                                 f"{', '.join(rawio.load_contract()['file_patterns'][table])}, and each round needs "
                                 "one families file and one members file.")
    raise InputFileError(path, f"no header row: none of {where} names at least {MIN_HEADER_MATCH} columns of the "
                         "contract (the file may have no header row, or hold another table).",
                         fix=f"put the header row (column names such as "
                             f"{', '.join(c['name'] for c in rawio.columns(table)[:3])}) above the data; the "
                             "accepted names are in data/raw/README.md.")


def _scorer(table: str, known: dict | None):
    """Header score of a row: contract columns it names, or (``known``: normalised header -> spec,
    e.g. a mapping's source headers) how many of ``known`` it names."""
    if known is None:
        return lambda names: _score(table, names)
    return lambda names: len({rawio.normalise_header(n) for n in names} & set(known))


def csv_layout(path: Path, table: str, *, known: dict | None = None,
               need: int = MIN_HEADER_MATCH) -> tuple[list[str], int, int, dict]:
    """Header names, lines before the data, the spreadsheet row number of the first data line, and
    how the file is written (encoding, delimiter, header line, title lines above it). The header row
    names at least ``need`` contract columns (or of the ``known`` headers, :func:`_scorer`)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)

    def fail(problem, fix):
        raise InputFileError(path, problem, fix=fix)
    start = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not start:
        fail("the file is empty.", "export the table again; the file must start with a header row.")
    if head.startswith(b"PK\x03\x04"):
        fail("this is an Excel workbook with a text extension, not a CSV table.", "rename it to .xlsx.")
    if re.match(rb"(?i)<(!doctype\s+html|html|head|body|table|\?xml)", start):
        fail("this is a web page (HTML), not a CSV table: the download returned a page (a login or error page, "
             "or a table saved from the browser) instead of the export.",
             "download the export again from the application (as CSV or XLSX); if it is a table saved from the "
             "browser, open it in a spreadsheet program and save it as CSV UTF-8 or XLSX.")
    enc = sniff_encoding(path, head)
    if b"\x00" in head and enc != "utf-16":
        fail("this is not a text table (binary content).", "export the table as CSV (UTF-8) or XLSX.")
    lines = re.split(r"\r\n|\r|\n", head.decode(enc, errors="replace").lstrip("\ufeff"))  # as pyarrow counts lines
    hint = re.fullmatch(r'\s*"?sep=(.)"?\s*', lines[0]) if lines else None
    first = 1 if hint else 0
    candidates = [i for i, line in enumerate(lines[first:], start=first) if line.strip()][:SCAN_ROWS]
    score = _scorer(table, known)
    scored = [(score(_split(lines[i], d)), -i, lines[i].count(d), d, i)
              for i in candidates for d in ((hint.group(1),) if hint else _DELIMITERS)]
    best = max(scored, default=None)
    if best is None or best[0] < need:
        top = lines[candidates[0]] if candidates else ""
        if not any(d in top for d in _DELIMITERS):
            fail("not a table: the first row has a single column (no comma, semicolon or tab separator).",
                 "export the table as CSV with comma, semicolon or tab separators.")
        if any(ord(ch) < 32 and ch != "\t" for ch in top) or "\ufffd" in top:
            fail(f"the header row cannot be decoded (encoding {enc}).", "save the file as CSV UTF-8.")
        _no_header(path, table, [_split(lines[i], d) for i in candidates[:3] for d in _DELIMITERS],
                   f"the first {len(candidates)} rows")
    _, _, _, delim, at = best
    names = [str(n) for n in pd.read_csv(io.StringIO(lines[at]), sep=delim, header=None, dtype=str,
                                         keep_default_na=False).iloc[0]]
    sample = [line for line in lines[at + 1:at + 7] if line.strip()]
    if len(head) == 65536 and len(sample) > 1:
        sample.pop()  # the last line of the buffer may be cut
    fields = [_split(line, delim) for line in sample]
    if _row_numbers(fields, len(names)):
        names = [""] + names  # row numbers without a header (a spreadsheet's or a data frame's index)
    info = {"format": "csv", "encoding": enc, "delimiter": delim}
    if at > first or hint:
        info["header_row"] = at + 1 - first
    # spreadsheet row numbers: Excel hides a "sep=" line, so the header is row (at + 1 - first)
    return names, at + 1, at + 2 - first, info


def read_csv(path: Path, n_cols: int, skip: int, info: dict, wanted: dict[int, bool]) -> tuple[pd.DataFrame, list]:
    """Read the wanted columns as strings: dictionary-encoded (categorical) unless ``wanted[i]``
    says the column is high-cardinality (ids, names). A row with another number of fields than the
    header (a separator inside an unquoted value, a missing one) becomes an empty row at its place,
    and its position is returned, so that it is rejected by name and every row keeps its number."""
    cols = [f"c{i}" for i in range(n_cols)]
    use = [cols[i] for i in wanted]
    types = {cols[i]: pa.string() if plain else pa.dictionary(pa.int32(), pa.string()) for i, plain in wanted.items()}
    bad: list[int] = []

    def skip_row(row):
        bad.append(row.number)
        return "skip"

    def read(**parse):
        return pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(column_names=cols, skip_rows=skip, encoding=info["encoding"],
                                                 use_threads=not parse),
            parse_options=pacsv.ParseOptions(delimiter=info["delimiter"], ignore_empty_lines=False, **parse),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=use, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False)).to_pandas()
    try:
        return read(), []
    except (pa.ArrowInvalid, UnicodeDecodeError):  # ragged rows, newlines in values: row by row
        pass
    try:
        frame = read(newlines_in_values=True, invalid_row_handler=skip_row)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not a readable table ({type(exc).__name__}).",
                             fix="open it in a spreadsheet program and save it again as CSV UTF-8 or XLSX.") from None
    if None in bad:  # pyarrow did not know the row numbers
        raise InputFileError(path, f"{len(bad)} rows have another number of fields than the header.",
                             fix="a separator inside an unquoted value shifts the columns: quote such values "
                                 "or export again.")
    positions = sorted(n - skip - 1 for n in bad)
    keep = np.setdiff1d(np.arange(len(frame) + len(positions)), positions)
    return frame.set_axis(keep).reindex(np.arange(len(frame) + len(positions))), positions


# --------------------------------------------------------------------- XLSX ---
def _text_decimal(rows: list, columns: list[int]) -> str:
    """The decimal mark the workbook's *text* number cells prove (``","`` or ``"."``): a number cell
    has no regional convention, so it is written with the mark its text neighbours use."""
    from .parse import number_evidence

    texts = pd.Series([r[i] for r in rows for i in columns if i < len(r) and isinstance(r[i], str)], dtype="str")
    return "," if len(texts) and (number_evidence(texts)["proves"] == ",").any() else "."


def _cell_text(v, kind: str | None = None, level: str | None = None, decimal: str = ".") -> str | None:
    """A cell as the text an export would show: dates ISO; whole numbers without decimals; a region
    code typed as a number in its dotted form (63.1 is kabupaten 63.10); other fractions with the
    ``decimal`` mark and never exactly three decimals (1.125 -> "1.1250": 1.125 could read as thousands)."""
    if v is None:
        return None
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        if kind == "region" and level == "kabupaten" and isinstance(v, float) and not v.is_integer():
            return f"{v:.2f}"
        if isinstance(v, int) or v.is_integer():
            return str(int(v))
        text = format(v, ".15g")
        text = text + "0" if re.fullmatch(r"-?[0-9]{1,3}\.[0-9]{3}", text) else text
        return text.replace(".", ",") if decimal == "," else text
    return str(v)


def read_xlsx(path: Path, table: str, *, known: dict | None = None,
              need: int = MIN_HEADER_MATCH) -> tuple[list[str], pd.DataFrame, int, dict]:
    """The sheet and header row that name the most contract columns (or ``known`` headers,
    :func:`_scorer`; a sheet named after the table wins a tie), read from the header down as text."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...
        raise InputFileError(path, f"not a readable XLSX workbook ({type(exc).__name__}).",
                             fix="open it in a spreadsheet program and save it again as .xlsx, or export CSV.")
    try:
        words = {table, *rawio.load_contract()["file_patterns"][table]}
        found, score = [], _scorer(table, known)
        for order, ws in enumerate(wb.worksheets):
            rows = []
            for i, row in enumerate(ws.iter_rows(values_only=True, max_row=SCAN_ROWS * 3), start=1):
                if any(v not in (None, "") for v in row):
                    rows.append((i, row))
                if len(rows) >= SCAN_ROWS:
                    break
            for i, row in rows:
                names = [_cell_text(v) or "" for v in row]
                found.append((score(names), rawio.normalise_header(ws.title) in words, -order, -i, ws.title,
                              i, names))
        best = max(found, default=None)
        titles = ", ".join(f"'{ws.title}'" for ws in wb.worksheets)
        if best is None:
            raise InputFileError(path, f"the workbook has no data (sheets searched: {titles}).",
                                 fix="put the table, with its header row, in the workbook.")
        if best[0] < need:
            _no_header(path, table, [f[-1] for f in found], f"the first {SCAN_ROWS} rows of the sheets {titles}")
        _, _, _, _, title, at, header = best
        while header and not header[-1]:
            header.pop()
        hmap, specs = rawio.header_map(table), {c["name"]: c for c in rawio.columns(table)}
        kinds = [(known or {}).get(rawio.normalise_header(n)) or specs.get(hmap.get(rawio.normalise_header(n)), {})
                 for n in header]
        rows = list(wb[title].iter_rows(min_row=at + 1, values_only=True))
        decimal = _text_decimal(rows, [i for i, k in enumerate(kinds) if k.get("type") in ("int", "float")])
        records = [[_cell_text(v, k.get("type"), k.get("level"), decimal) for v, k in zip(row, kinds)]
                   + [None] * (len(header) - len(row)) for row in rows]
    finally:
        wb.close()
    frame = pd.DataFrame(records or None, columns=[f"c{i}" for i in range(len(header))], dtype="str")
    info = {"format": "xlsx", "sheet": title}
    if at > 1:
        info["header_row"] = at
    return header, frame, at + 1, info
