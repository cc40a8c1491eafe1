"""The data dictionary (``data/raw/README.md``), rendered from ``pk2d/contract.yaml``.

The contract is the single source of truth; ``pk2d dictionary`` rewrites the
Markdown and ``tests/test_dictionary.py`` fails when it is out of date.

>>> "| no_kk |" in render_dictionary()
True
"""
from __future__ import annotations

from pathlib import Path

import yaml

from . import paths

HEADER = """\
# Data mentah / raw data

> **SINTETIS / SYNTHETIC.** Every `SINTETIS_*` file in this folder was made by
> `pk2d synth --seed 20240710` (see `pk2d/synth.py`). No real family is in
> them: names, NIK and No. KK are random. Kecamatan and desa codes below the
> kabupaten are illustrative, not the official Kemendagri table.

This folder is **immutable input**: pk2d reads it and never writes to it
(only `pk2d synth` and `pk2d dictionary` write here, on request). To use real
data, put the exports of one survey round here as a pair of files whose names
differ only by `keluarga` / `anggota`, e.g.
`kotabaru_2025_putaran1_keluarga.xlsx` + `kotabaru_2025_putaran1_anggota.xlsx`,
remove (or move) the synthetic files, then run `make run`. Real data must
never be committed: keep it outside git or add it to `.gitignore`.

Accepted formats: CSV or TXT (comma, semicolon, tab or `|`; an Excel `sep=;`
first line; UTF-8 with or without BOM, UTF-16, or Windows-1252) and XLSX. The
header row is the row (among the first 30, below any title block) and the sheet
that name the most columns of this contract. Headers are matched ignoring case,
spaces, dots, dashes and underscores, and every alias below is accepted.
Yes/no answers: {yes} = yes; {no} = no.

Each file writes its numbers and dates one way, decided from all its values:
the decimal comma (`12,5`, thousands `1.500.000`) or the decimal dot (`12.5`,
thousands `1,500,000`); day-first dates (`31/12/2024`, the default) or
month-first ones (`12/31/2024`). A file whose values prove both ways, or holds
values like `2.333` that read as 2333 or as 2.333 with nothing in their column
to say which, is refused with the counts and the first row of each, never
guessed. So is a file that is partly UTF-8 and partly another encoding, a web
page saved as `.csv`, identifiers shown in scientific notation or cut to 15
digits by a spreadsheet, and a column whose values are mostly not of its type
(two headers swapped). A row with another number of fields than the header is
rejected by name (`jumlah_kolom_salah`). Rejection reasons name the file, row,
column and rule, never a value.

Region list: besides `pk2d/data/wilayah.csv` (provinces and kabupaten), a
`*wilayah*.csv` in this folder with the columns `kode,tingkat,nama,kode_induk`
lists the team's kecamatan and desa; a code missing from it is rejected
(`kode_desa_tidak_dikenal`) for every kabupaten it lists villages of.

*This file is generated from `pk2d/contract.yaml` by `pk2d dictionary`; edit
the contract, not this file.*
"""


def _codes(col: dict) -> str:
    if col.get("codes"):
        return "; ".join(f"`{k}` ({', '.join(str(s) for s in v[:3])})" for k, v in col["codes"].items())
    bounds = [f"min {col['min']}" if "min" in col else "", f"max {col['max']}" if "max" in col else ""]
    return ", ".join(b for b in bounds if b)


def render_dictionary(contract_file: str | Path = paths.CONTRACT_FILE) -> str:
    """Markdown data dictionary: one table per raw table, every column."""
    c = yaml.safe_load(Path(contract_file).read_text(encoding="utf-8"))
    out = [HEADER.format(yes=", ".join(f"`{v}`" for v in c["yes_values"]),
                         no=", ".join(f"`{v}`" for v in c["no_values"]))]
    for key, table in c["tables"].items():
        words = ", ".join(f"`{w}`" for w in c["file_patterns"][key])
        out.append(f"\n## {table['title']}\n\nFile name contains one of: {words}.\n")
        out.append("| column | aliases | type | required | empty allowed | personal | allowed values | meaning |")
        out.append("|---|---|---|---|---|---|---|---|")
        for col in table["columns"]:
            out.append("| {n} | {a} | {t} | {r} | {e} | {p} | {v} | {m} |".format(
                n=col["name"], a=", ".join(col.get("aliases", [])), t=col["type"],
                r="yes" if col.get("required") else "no",
                e="no" if col.get("nullable", True) is False else "yes",
                p="**yes**" if col.get("personal") else "no", v=_codes(col),
                m=col.get("meaning", "").replace("|", "/")))
    out.append("""
## Types

- `id16`: 16 digits (NIK, No. KK); personal data, replaced by keyed pseudonyms in the clean stage.
- `region`: Kemendagri code with or without dots (`6302062001` = `63.02.06.2001`).
- `rt`: RT number, `1`, `001`, `1.0` or `RT 01`.
- `yesno`: see the accepted spellings above; empty = not asked / not applicable.
- `date`: `YYYY-MM-DD`, `DD/MM/YYYY` (or `MM/DD/YYYY` where the file proves it), `DD-MM-YYYY` or an Excel date.
- `float`, `int`: decimal comma or point, one per file; thousands separators allowed (`1.500.000`); `12.0` is a whole number.
- `code`: one of the canonical values; the spellings in brackets (and more, see the contract) are accepted.
""")
    return "\n".join(out)
