"""``pk2d form``: the XLSForm (ODK Collect / KoboToolbox) of the raw-data contract.

Cadres who collect on phones fill in this form; the tools' exports then hold the contract's
columns under the contract's names, so the clean stage reads them like any other export. The form
is built from ``pk2d/contract.yaml`` (questions, types, ranges, codes), ``pk2d/data/wilayah.csv``
plus the team's region list (area codes) and the text catalogue ``pk2d/templates/text.yaml`` (the
form's own words: title, group labels, constraint messages, the check of the head of family).

Conventions (the reader of the tools' exports relies on them):

- every question's ``name`` is a contract column name; groups ``wilayah`` (putaran ... rt),
  ``keluarga`` (the other interview columns of table ``keluarga``), ``desain`` (the optional
  sample-design columns, filled in by a supervisor for a sample survey only) and the repeat
  ``anggota`` (table ``anggota``). A member has **no** ``no_kk`` question: a member's No. KK is
  its family's, the parent of the repeat (``keluarga/no_kk``);
- helper fields that are not contract columns: ``umur_hitung`` (age in completed years at the
  interview, from the birth date or else ``umur``) and ``kepala_hitung`` (1 for the head) in the
  repeat; ``jumlah_kepala`` (their sum) and the check ``cek_kepala_keluarga`` after it (:data:`HELPERS`);
- choice names: ``ya`` / ``tidak`` (list ``yesno``); the contract's canonical codes (one list per
  code column, named after it; labels = the contract's first spelling, first letter upper case, in
  both languages, so an export of labels parses too); area codes as **undotted digits**
  (``63``, ``6302``, ``630206``, ``6302062012``): ODK accepts dots, but a CSV export opened in a
  spreadsheet turns ``63.10`` into the number 63.1, which no longer names Kabupaten Tanah Bumbu;
  typed kecamatan/desa codes (where no list is given) are undotted digits too;
- area lists ``provinsi``, ``kabupaten`` (column ``provinsi``), ``kecamatan`` (``kabupaten``),
  ``desa`` (``kecamatan``), filtered by the chosen parent; ``nama_*`` are calculated from the chosen
  code. With a team list, an area whose list stops short (a kabupaten without listed kecamatan)
  has ``aktif`` 0 and is not offered, as its next list would be empty: the team's list covers the
  kabupaten it surveys. Without a list a level is a typed code, its format and prefix checked;
- types, ranges and required answers (``nullable: false``) from the contract; ``umur`` only
  without a birth date, ``usia_kawin_pertama`` only for the ever married (not above the age),
  ``imunisasi_lengkap`` only below 5 years, each then required (the contract leaves them empty
  otherwise); the interview date not after today, the birth date not after the interview;
- labels, hints and constraint messages in ``Bahasa Indonesia (id)`` and ``English (en)``; hints
  are the two halves of the contract's ``meaning``, labels their first phrase.

Personal data: the form asks NIK, No. KK, names and birth dates because the clean stage needs them
to link families and members (and then replaces or drops them). It asks no device id, phone
number, user name or GPS position, and its instance name (the title of a saved form on the phone
and the server) names the village, RT, date and member count, never a person.

The same contract, texts and region list give the same bytes (fixed workbook and zip dates); the
version is the contract's version, :data:`FORM_REVISION` and a digest of the form's content.

>>> form = build_form()
>>> sorted(form), form["settings"][0]["form_id"]
(['choices', 'settings', 'survey'], 'pk2d_keluarga')
>>> umur = next(r for r in form["survey"] if r.get("name") == "umur")
>>> umur["type"], umur["relevant"], umur["constraint"]
('integer', "${tanggal_lahir} = ''", '. >= 0 and . <= 110')
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import string
from pathlib import Path

from . import rawio
from .errors import FileSystemError, InputFileError, Pk2dError, safe_path
from .io import workbook_bytes
from .text import LANGS, t

FORM_ID = "pk2d_keluarga"
#: bump when this module changes the form for the same contract (part of the version)
FORM_REVISION = 1
LANGUAGES = {"id": "Bahasa Indonesia (id)", "en": "English (en)"}
WILAYAH = ("putaran", "tahun", "kode_provinsi", "nama_provinsi", "kode_kabupaten", "nama_kabupaten",
           "kode_kecamatan", "nama_kecamatan", "kode_desa", "nama_desa", "dusun", "rt")
DESAIN = ("bobot", "strata", "psu", "ssu", "populasi_psu", "populasi_ssu", "populasi_keluarga")
HELPERS = ("umur_hitung", "kepala_hitung", "jumlah_kepala", "cek_kepala_keluarga")
HEAD, NEVER_MARRIED = "kepala", "belum_kawin"  #: codes of hubungan and status_kawin the rules use
BALITA = 5  #: imunisasi_lengkap is asked below this age (the contract; features.py's balita)
LEVELS = ("provinsi", "kabupaten", "kecamatan", "desa")
PARENT = {"kabupaten": "provinsi", "kecamatan": "kabupaten", "desa": "kecamatan"}
DIGITS = {"provinsi": 2, "kabupaten": 4, "kecamatan": 6, "desa": 10}
SURVEY_COLUMNS = ("type", "name", "label", "hint", "required", "relevant", "constraint", "constraint_message",
                  "calculation", "choice_filter", "appearance")
TRANSLATED = ("label", "hint", "constraint_message")
SETTINGS_COLUMNS = ("form_title", "form_id", "version", "default_language", "instance_name", "name")
FIXED_TIME = dt.datetime(2020, 1, 1)  #: workbook created/modified and zip entry dates: same input, same bytes


# ------------------------------------------------------------------------ texts ---
def _both(key: str, **values) -> dict[str, str]:
    return {lang: t(key, lang, **values) for lang in LANGS}


def _tr(column: str, pair: dict[str, str] | None) -> dict[str, str]:
    return {f"{column}::{LANGUAGES[lang]}": pair[lang] for lang in LANGS} if pair else {}


def halves(meaning: str) -> dict[str, str]:
    """The contract's ``"Bahasa Indonesia / English"`` meaning as ``{"id": ..., "en": ...}``.

    >>> halves("Tahun survei / survey year")
    {'id': 'Tahun survei', 'en': 'survey year'}
    """
    parts = meaning.split(" / ")
    return {"id": parts[0], "en": parts[1]} if len(parts) == 2 else {"id": meaning, "en": meaning}


def short_label(text: str) -> str:
    """A question label from a meaning: its first phrase, first letter upper case.

    >>> short_label("Nomor Kartu Keluarga, 16 digit (data pribadi)"), short_label("varied diet")
    ('Nomor Kartu Keluarga', 'Varied diet')
    """
    cut = min([i for i in (text.find(s) for s in (" (", "; ", ": ", ", ", ". ")) if i > 0] or [len(text)])
    head = text[:cut].strip()
    return head[:1].upper() + head[1:]


def choice_label(code: str, spellings: list) -> str:
    """The label of a code: the contract's first spelling, first letter upper case (``"l"`` -> ``"L"``)."""
    first = str(spellings[0]) if spellings else str(code)
    return first[:1].upper() + first[1:]


def _number(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _range(spec: dict) -> tuple[list[str], dict | None]:
    lo, hi = spec.get("min"), spec.get("max")
    parts = ([f". >= {_number(lo)}"] if lo is not None else []) + ([f". <= {_number(hi)}"] if hi is not None else [])
    if not parts:
        return [], None
    key = "range" if lo is not None and hi is not None else "min" if lo is not None else "max"
    return parts, _both(f"form.msg.{key}", **{k: _number(spec[k]) for k in ("min", "max") if k in spec})


# ---------------------------------------------------------------------- regions ---
def _undot(code: str) -> str:
    return code.replace(".", "")


def _fail(path, problem: str, column: str | None = None, fix: str | None = None):
    raise InputFileError(path, problem, column=column, fix=fix or (
        "give a CSV file with the columns kode,tingkat,nama,kode_induk (one row per kecamatan or desa), "
        "like data/raw/SINTETIS_wilayah.csv."))


def _team_list(path):
    """The team's region list, checked: rows of kode (dotted), tingkat, nama, induk, row."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        _fail(path, "this region list is a folder, not a CSV file." if path.is_dir() else
              "this region list does not exist.")
    try:
        head = path.read_bytes()[:4096].decode("utf-8-sig", errors="ignore").split("\n")[0]
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=False,
                         sep=";" if head.count(";") > head.count(",") else ",")
    except UnicodeDecodeError:
        _fail(path, "the region list is not UTF-8 text.", fix="save it as 'CSV UTF-8' (a spreadsheet's Save As).")
    except pd.errors.EmptyDataError:
        _fail(path, "the region list is empty.")
    except pd.errors.ParserError as exc:  # pandas names the line and the field counts, never a value
        _fail(path, f"the region list cannot be read as a CSV table ({str(exc).splitlines()[0][:120]}).")
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("kode", "tingkat", "nama") if c not in df.columns]
    if missing:
        _fail(path, f"a region list needs the columns kode, tingkat, nama (missing: {', '.join(missing)}).",
              column=missing[0])
    df = df.apply(lambda s: s.str.strip()).assign(row=df.index + 2)  # spreadsheet rows: the header is row 1
    df = df[(df.drop(columns="row") != "").any(axis=1)]
    if df.empty:
        _fail(path, "the region list has a header but no region.")
    if "kode_induk" not in df.columns:
        df["kode_induk"] = ""
    for r in df.itertuples():
        if r.tingkat not in DIGITS:
            _fail(path, f"row {r.row}: tingkat must be one of {', '.join(LEVELS)}.", "tingkat",
                  fix="correct the level.")
        if not r.nama:
            _fail(path, f"row {r.row}: the name (nama) is empty.", "nama", fix="write the region's name.")
    out = []
    for level, g in df.groupby("tingkat", sort=False):
        kode = rawio.normalise_region(g["kode"], level)
        for r, k in zip(g.itertuples(), kode):
            if not isinstance(k, str):
                _fail(path, f"row {r.row}: kode is not a {level} code ({DIGITS[level]} digits, with or without "
                      "dots).", "kode", fix="correct the code (Kemendagri codes, e.g. 63.02.06 or 6302062012).")
            parent = k.rsplit(".", 1)[0] if level != "provinsi" else ""
            if r.kode_induk and level != "provinsi" and \
                    rawio.normalise_region(pd.Series([r.kode_induk]), PARENT[level]).iloc[0] != parent:
                _fail(path, f"row {r.row}: kode_induk is not the {PARENT[level]} code the kode starts with "
                      f"({parent}).", "kode_induk", fix="correct kode_induk, or leave it empty (it follows from kode).")
            out.append({"kode": k, "tingkat": level, "nama": r.nama, "induk": parent, "row": r.row})
    seen: dict[str, dict] = {}
    for r in sorted(out, key=lambda r: r["row"]):
        first = seen.setdefault(r["kode"], r)
        if first is not r and first["nama"] != r["nama"]:
            _fail(path, f"rows {first['row']} and {r['row']}: the code {r['kode']} has two names.", "nama",
                  fix="keep one row per code.")
    return list(seen.values())


def read_regions(regions=None) -> list[dict]:
    """The area rows of the form: ``pk2d/data/wilayah.csv`` plus the team's list ``regions`` (a CSV with
    kode,tingkat,nama,kode_induk). Each row: ``kode`` (dotted), ``tingkat``, ``nama``, ``induk``, in
    level and code order. A list that names a kabupaten outside wilayah.csv, or a desa whose kecamatan
    it does not list, raises :class:`~pk2d.errors.InputFileError` (the clean stage would refuse them).

    >>> [r["kode"] for r in read_regions()][:3]
    ['63', '63.01', '63.02']
    """
    ref = rawio.load_regions()
    rows = [{"kode": r.kode, "tingkat": r.tingkat, "nama": r.nama,
             "induk": r.kode.rsplit(".", 1)[0] if r.tingkat != "provinsi" else ""} for r in ref.itertuples()]
    known = {(r["tingkat"], r["kode"]) for r in rows}
    if regions is not None:
        team = _team_list(regions)
        listed = {(r["tingkat"], r["kode"]) for r in team}
        for r in team:
            if r["tingkat"] in ("provinsi", "kabupaten") and (r["tingkat"], r["kode"]) not in known:
                _fail(regions, f"row {r['row']}: {r['tingkat']} {r['kode']} is not in pk2d/data/wilayah.csv; the "
                      "clean stage refuses codes missing there.", "kode", fix="correct the code, or add the region "
                      "to pk2d/data/wilayah.csv if it is genuinely missing there.")
            if r["tingkat"] == "kecamatan" and ("kabupaten", r["induk"]) not in known:
                _fail(regions, f"row {r['row']}: kecamatan {r['kode']} lies in kabupaten {r['induk']}, which "
                      "pk2d/data/wilayah.csv does not list.", "kode", fix="correct the code, or add the kabupaten "
                      "to pk2d/data/wilayah.csv if it is genuinely missing there.")
            if r["tingkat"] == "desa" and ("kecamatan", r["induk"]) not in listed:
                _fail(regions, f"row {r['row']}: desa {r['kode']} lies in kecamatan {r['induk']}, which the list "
                      "does not name.", "kode", fix="add a row for the kecamatan (the form offers kecamatan, then "
                      "their villages).")
        rows += [{k: r[k] for k in ("kode", "tingkat", "nama", "induk")} for r in team
                 if (r["tingkat"], r["kode"]) not in known]
    return sorted(rows, key=lambda r: (LEVELS.index(r["tingkat"]), r["kode"]))


def _area(regions: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Choice rows of the area lists, and the choice_filter of each listed level."""
    listed = {lvl for lvl in LEVELS if any(r["tingkat"] == lvl for r in regions)}
    active: dict[str, bool] = {}
    for lvl in reversed(LEVELS):
        child = LEVELS[LEVELS.index(lvl) + 1] if lvl != "desa" else None
        parents = {r["induk"] for r in regions if child in listed and r["tingkat"] == child and active[r["kode"]]}
        for r in regions:
            if r["tingkat"] == lvl:
                active[r["kode"]] = child not in listed or r["kode"] in parents
    choices, filters = [], {}
    for lvl in LEVELS:
        rows = [r for r in regions if r["tingkat"] == lvl]
        every = all(active[r["kode"]] for r in rows)
        for r in rows:
            c = {"list_name": lvl, "name": _undot(r["kode"]), **_tr("label", {"id": r["nama"], "en": r["nama"]})}
            if lvl in PARENT:
                c[PARENT[lvl]] = _undot(r["induk"])
            if not every:
                c["aktif"] = "1" if active[r["kode"]] else "0"
            choices.append(c)
        if rows:
            parts = [f"{PARENT[lvl]}=${{kode_{PARENT[lvl]}}}"] if lvl in PARENT else []
            filters[lvl] = " and ".join(parts + ([] if every else ["aktif='1'"]))
    return choices, filters


# ------------------------------------------------------------------------ survey ---
def _rules(contract: dict) -> dict[str, dict]:
    """The rules of single columns beyond type and range (relevance, cross-question constraints)."""
    status = next(c for c in rawio.columns("anggota", contract) if c["name"] == "status_kawin")["codes"]
    relations = next(c for c in rawio.columns("anggota", contract) if c["name"] == "hubungan")["codes"]
    if NEVER_MARRIED not in status or HEAD not in relations:
        raise Pk2dError(f"contract: the form needs the codes {NEVER_MARRIED!r} (status_kawin) and {HEAD!r} "
                        "(hubungan).", fix="restore them in pk2d/contract.yaml, or change HEAD / NEVER_MARRIED in "
                        "pk2d/form.py.")
    married = " or ".join(f"${{status_kawin}} = '{c}'" for c in status if c != NEVER_MARRIED)
    return {
        "tanggal_wawancara": {"constraint": [". <= today()", "format-date(., '%Y') - ${tahun} <= 1",
                                             "${tahun} - format-date(., '%Y') <= 1"],
                              "msg": "tanggal_wawancara"},
        "tanggal_lahir": {"constraint": [". <= ${tanggal_wawancara}"], "msg": "tanggal_lahir"},
        "umur": {"relevant": "${tanggal_lahir} = ''", "required": "yes"},
        "usia_kawin_pertama": {"relevant": married, "required": "yes", "constraint": [". <= ${umur_hitung}"],
                               "msg": "usia_kawin_pertama"},
        "imunisasi_lengkap": {"relevant": f"${{umur_hitung}} != '' and ${{umur_hitung}} < {BALITA}",
                              "required": "yes"},
    }


def _question(spec: dict, rules: dict, area: dict[str, str]) -> dict:
    """The row of a contract column; ``area``: the choice_filter of each level offered as a list."""
    name, kind = spec["name"], spec["type"]
    meaning = halves(spec.get("meaning", name))
    if name.startswith("nama_") and name[5:] in area:
        return {"type": "calculate", "name": name, "calculation": f"jr:choice-name(${{kode_{name[5:]}}}, "
                                                                  f"'${{kode_{name[5:]}}}')"}
    row = {"name": name, **_tr("label", {k: short_label(v) for k, v in meaning.items()}), **_tr("hint", meaning)}
    if spec.get("nullable", True) is False:
        row["required"] = "yes"
    constraint, msg = _range(spec) if kind in ("int", "float", "rt") else ([], None)
    if kind == "region":
        level = spec["level"]
        if level in area:
            row["type"] = f"select_one {level}"
            if area[level]:
                row["choice_filter"] = area[level]
        else:
            row.update({"type": "text", "appearance": "numbers", **_tr("hint", _both(f"form.hint.{name}"))})
            constraint = [f"regex(., '^[0-9]{{{DIGITS[level]}}}$')", f"starts-with(., ${{kode_{PARENT[level]}}})"]
            msg = _both(f"form.msg.{name}")
    elif kind == "id16":
        row.update(type="text", appearance="numbers")
        constraint, msg = ["regex(., '^[0-9]{16}$')"], _both("form.msg.id16")
    else:
        row["type"] = {"int": "integer", "rt": "integer", "float": "decimal", "date": "date", "str": "text",
                       "yesno": "select_one yesno", "code": f"select_one {name}"}[kind]
    rule = rules.get(name, {})
    row.update({k: rule[k] for k in ("relevant", "required") if k in rule})
    if rule.get("constraint"):
        constraint = constraint + rule["constraint"]
        msg = _both(f"form.msg.{rule['msg']}", **{k: _number(spec[k]) for k in ("min", "max") if k in spec})
    if name in DESAIN:
        row.update(_tr("hint", {k: f"{v}. {t('form.desain_note', k)}" for k, v in meaning.items()}))
    if constraint:
        row.update({"constraint": " and ".join(constraint), **_tr("constraint_message", msg)})
    return row


def _begin(kind: str, name: str) -> dict:
    return {"type": f"begin_{kind}", "name": name, **_tr("label", _both(f"form.group.{name}"))}


def _survey(contract: dict, area: dict[str, str]) -> list[dict]:
    rules = _rules(contract)
    fam = {c["name"]: c for c in rawio.columns("keluarga", contract)}
    survey = []
    for group, names in (("wilayah", [n for n in WILAYAH if n in fam]),
                         ("keluarga", [n for n in fam if n not in WILAYAH and n not in DESAIN]),
                         ("desain", [n for n in DESAIN if n in fam])):
        survey += [_begin("group", group), *(_question(fam[n], rules, area) for n in names), {"type": "end_group"}]
    survey.append(_begin("repeat", "anggota"))
    for spec in rawio.columns("anggota", contract):
        if spec["name"] == "no_kk":  # the family's No. KK: the repeat's parent
            continue
        survey.append(_question(spec, rules, area))
        if spec["name"] == "hubungan":
            survey.append({"type": "calculate", "name": "kepala_hitung",
                           "calculation": f"if(${{hubungan}} = '{HEAD}', 1, 0)"})
        if spec["name"] == "umur":  # completed years at the interview, as pk2d.cleaning.age_years
            survey.append({"type": "calculate", "name": "umur_hitung", "calculation": (
                "if(${tanggal_lahir} != '', format-date(${tanggal_wawancara}, '%Y') - "
                "format-date(${tanggal_lahir}, '%Y') - if(format-date(${tanggal_wawancara}, '%m%d') < "
                "format-date(${tanggal_lahir}, '%m%d'), 1, 0), ${umur})")})
    survey += [{"type": "end_repeat"},
               {"type": "calculate", "name": "jumlah_kepala", "calculation": "sum(${kepala_hitung})"},
               {"type": "acknowledge", "name": "cek_kepala_keluarga",
                **_tr("label", _both("form.check_head.label", n="${jumlah_kepala}")),
                **_tr("hint", _both("form.check_head.hint")), "required": "yes", "constraint": "${jumlah_kepala} = 1",
                **_tr("constraint_message", _both("form.check_head.message"))}]
    return survey


def _concat(template: str, fields: dict[str, str]) -> str:
    """An XPath ``concat(...)`` of a catalogue text whose ``{placeholders}`` are XPath expressions."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(f"'{literal}'" if "'" not in literal else f'"{literal}"')
        if field:
            parts.append(fields[field])
    return f"concat({', '.join(parts)})"


def build_form(lang: str = "id", regions=None) -> dict[str, list[dict]]:
    """The XLSForm as ``{"survey": rows, "choices": rows, "settings": [row]}`` (each row a dict of
    XLSForm columns); ``regions``: the team's region list CSV (kecamatan and desa become lists).
    :func:`pyxform.xls2xform.convert` takes it as it is."""
    if lang not in LANGUAGES:
        raise Pk2dError(f"unknown form language {lang!r}.", fix=f"use one of {', '.join(LANGUAGES)}.")
    contract = rawio.load_contract()
    area_choices, area = _area(read_regions(regions))
    survey = _survey(contract, area)
    choices = [{"list_name": "yesno", "name": name, **_tr("label", _both(f"form.{name}"))} for name in ("ya", "tidak")]
    for spec in (*rawio.columns("keluarga", contract), *rawio.columns("anggota", contract)):
        if spec["type"] == "code":
            label = {code: choice_label(code, spelled) for code, spelled in spec["codes"].items()}
            choices += [{"list_name": spec["name"], "name": str(code), **_tr("label", {"id": lb, "en": lb})}
                        for code, lb in label.items()]
    choices += area_choices
    settings = {"form_title": t("form.title", lang), "form_id": FORM_ID, "version": "",
                "default_language": LANGUAGES[lang], "name": "data",
                "instance_name": _concat(t("form.instance_name", lang), {"desa": "${nama_desa}", "rt": "${rt}",
                                         "tanggal": "${tanggal_wawancara}", "n": "count(${anggota})"})}
    body = json.dumps([survey, choices, settings], sort_keys=True, ensure_ascii=False)
    settings["version"] = f"{contract['version']}.{FORM_REVISION}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"
    return {"survey": survey, "choices": choices, "settings": [settings]}


# ------------------------------------------------------------------------- files ---
def _columns(rows: list[dict], order: tuple[str, ...]) -> list[str]:
    used = {k for r in rows for k in r}
    out = []
    for col in order:
        out += [f"{col}::{LANGUAGES[lang]}" for lang in LANGS] if col in TRANSLATED else [col]
    out = [c for c in out if c in used]
    return out + sorted(used - set(out), key=lambda c: next(i for i, r in enumerate(rows) if c in r))


def xlsx_bytes(form: dict[str, list[dict]]) -> bytes:
    """The XLSForm workbook of :func:`build_form`'s result (same form, same bytes)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    orders = {"survey": SURVEY_COLUMNS, "choices": ("list_name", "name", "label", *PARENT.values()),
              "settings": SETTINGS_COLUMNS}
    for sheet, rows in form.items():
        ws = wb.create_sheet(sheet)
        cols = _columns(rows, orders[sheet])
        ws.append(cols)
        for r in rows:
            ws.append([r.get(c, "") or None for c in cols])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
    wb.properties.creator = wb.properties.lastModifiedBy = "pk2d"
    wb.properties.title = form["settings"][0]["form_title"]
    return workbook_bytes(wb, FIXED_TIME)


def write_form(path, lang: str = "id", regions=None) -> Path:
    """Write the XLSForm to ``path`` (``.xlsx``), checked by pyxform first; returns the path.

    >>> import tempfile
    >>> p = write_form(Path(tempfile.mkdtemp()) / "pk2d_keluarga.xlsx", lang="en")
    >>> p.read_bytes()[:2]
    b'PK'
    """
    from .io import ensure_writable_dir, write_bytes

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise Pk2dError(f"{safe_path(path)}: the form is an Excel workbook (XLSForm), its file name ends in .xlsx.",
                        fix="name a file ending in .xlsx, e.g. --out pk2d_keluarga.xlsx.")
    if path.is_dir():
        raise FileSystemError(path, "it is a folder, where a file is needed",
                              fix="name a file, e.g. pk2d_keluarga.xlsx.")
    data = xlsx_bytes(build_form(lang, regions))
    ensure_writable_dir(path.parent, "The folder of the form")
    from pyxform.xls2xform import convert  # a bug here, never bad input: it raises

    convert(data, file_type=".xlsx")
    return write_bytes(path, data)


def summary(form: dict[str, list[dict]]) -> str:
    """One line: questions, and the rows of each area list."""
    n = sum(1 for r in form["survey"] if not r["type"].startswith(("begin", "end", "calculate")))
    lists = ", ".join(f"{lvl} {sum(1 for c in form['choices'] if c['list_name'] == lvl)}" for lvl in LEVELS
                      if any(c["list_name"] == lvl for c in form["choices"]))
    return f"{n} questions; area lists: {lists}; version {form['settings'][0]['version']}"
