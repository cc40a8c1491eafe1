"""Synthetic exports of the field tools: a round of the synthetic sample (native families and members
files) written as KoboToolbox or ODK Central would export the pk2d form (:mod:`pk2d.form`) after
the cadres had filled it on their phones. They follow the tools' documented export conventions
(see :mod:`pk2d.tools`): the tools' own columns with made-up device ids, phone numbers, user names
and GPS points (so that a test can see they never pass the clean stage), group paths or none, choice
names or labels, and submissions edited twice (the older versions named in ``deprecatedID``).

Members whose No. KK matches no family (the sample's dirt) cannot be written as a repeat of a family:
they are left out, as a tool would never have them.

>>> SHAPES
('kobo-xlsx', 'kobo-csv', 'odk-csv')
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from . import parse, rawio
from .form import DESAIN, FORM_ID, WILAYAH, choice_label
from .io import atomic_path, workbook_bytes

SHAPES = ("kobo-xlsx", "kobo-csv", "odk-csv")


def group_of(column: str) -> str:
    """The form group of a families column (:mod:`pk2d.form`): ``wilayah``, ``desain`` or ``keluarga``.

    >>> group_of("kode_desa"), group_of("bobot"), group_of("no_kk")
    ('wilayah', 'desain', 'keluarga')
    """
    return "wilayah" if column in WILAYAH else "desain" if column in DESAIN else "keluarga"


def _read(path: Path) -> tuple[list[str], list[dict]]:
    raw = rawio.read_table(path, "keluarga" if "keluarga" in path.name.lower() else "anggota")
    cols = [c for c in raw.data.columns if not c.startswith("_")]
    return cols, raw.data[cols].astype(object).where(raw.data[cols].notna(), "").to_dict("records")


def _as_choices(rows: list[dict], table: str, labels: bool) -> list[dict]:
    """Answers as a tool stores them: choice names (``ya``, ``kepala``) or, with ``labels``, the
    contract's first spelling of each code; a value the contract does not understand stays as typed."""
    out = [dict(r) for r in rows]
    for spec in rawio.columns(table):
        c, kind = spec["name"], spec["type"]
        if kind not in ("yesno", "code", "region") or not rows or c not in rows[0]:
            continue
        values = pd.Series([r[c] or None for r in rows], dtype="str")
        if kind == "yesno":
            got = parse.parse_yesno(values)
            name = got.map({True: "Ya" if labels else "ya", False: "Tidak" if labels else "tidak"})
        elif kind == "region":  # the form's choice names are undotted codes; a label is the dotted code
            got = rawio.normalise_region(values, spec["level"])
            name = got if labels else got.str.replace(".", "", regex=False)
        else:
            got = parse.parse_code(values, spec)
            name = got.map({k: (choice_label(k, v) if labels else k) for k, v in spec["codes"].items()})
        for r, v, orig in zip(out, name.tolist(), values.tolist()):
            r[c] = v if isinstance(v, str) else (orig or "")
    return out


def _uuid(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _personal_metadata(i: int, rng) -> dict:
    """Made-up device, phone, user and GPS values (what a tool records beside the answers)."""
    lat, lon = -3.0 - rng.random(), 116.0 + rng.random()
    return {"deviceid": f"collect:{rng.integers(10**15, 10**16)}", "phonenumber": f"08{rng.integers(10**9, 10**10)}",
            "username": f"kader_{i % 7}", "lokasi": f"{lat:.6f} {lon:.6f} 12.0 4.5"}


def export_round(families_csv, members_csv, out_dir, shape: str, *, groups: bool = True, labels: bool = False,
                 edited: int = 3, seed: int = 1, stem: str = FORM_ID) -> list[Path]:
    """Write one round (native ``families_csv`` + ``members_csv``) as the export ``shape`` in
    ``out_dir``, its files named after ``stem``; ``edited`` families are submitted three times
    (edited twice: only the last is the family's answer). Returns the files written.

    >>> export_round("data/raw/x_keluarga.csv", "data/raw/x_anggota.csv", "/tmp/kobo", "kobo-xlsx")  # doctest: +SKIP
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    rng = np.random.default_rng(seed)
    fcols, fams = _read(Path(families_csv))
    mcols, mems = _read(Path(members_csv))
    fams, mems = _as_choices(fams, "keluarga", labels), _as_choices(mems, "anggota", labels)
    tool = shape.split("-")[0]
    sep = "/" if tool == "kobo" else "-"

    def fname(c):
        return f"{group_of(c)}{sep}{c}" if groups else c

    def mname(c):
        return f"anggota{sep}{c}" if groups and tool == "kobo" else c
    first_of = {}
    for i, f in enumerate(fams):
        first_of.setdefault(f["no_kk"], i)
    members_of: dict[int, list[dict]] = {}
    for m in mems:
        if m.get("no_kk") in first_of:
            members_of.setdefault(first_of[m["no_kk"]], []).append(m)
    edits = set(rng.choice(len(fams), size=min(edited, len(fams)), replace=False).tolist()) if fams else set()
    start = dt.datetime(2024, 1, 1, 8, 0)
    main, repeat = [], []
    for i, f in enumerate(fams):
        versions = 3 if i in edits else 1
        prev = None
        for v in range(versions):
            uid = _uuid(f"{seed}-{i}-{v}")
            answers = dict(f)
            if v < versions - 1:  # an older version: one answer differs from the final one
                answers["jamban_sehat"] = {"ya": "tidak", "tidak": "ya", "Ya": "Tidak", "Tidak": "Ya"}.get(
                    answers.get("jamban_sehat", ""), "ya")
            when = (start + dt.timedelta(minutes=17 * len(main))).isoformat(timespec="seconds")
            idx = len(main) + 1
            row = {"start": when, "end": when, **_personal_metadata(i, rng)}
            row |= {fname(c): answers[c] for c in fcols}
            key = f"uuid:{uid}"
            kids = members_of.get(i, [])
            if tool == "kobo":
                row |= {"meta/instanceID": key, "meta/deprecatedID": prev or "", "_id": 1000 + idx, "_uuid": uid,
                        "_submission_time": when, "_validation_status": "", "_notes": "", "_status":
                        "submitted_via_web", "_submitted_by": f"kader_{i % 7}", "__version__": "v1", "_tags": "",
                        "_index": idx}
                for k, m in enumerate(kids):
                    repeat.append({mname(c): m[c] for c in mcols if c != "no_kk"} | {
                        "_index": len(repeat) + 1, "_parent_table_name": FORM_ID, "_parent_index": idx,
                        "_submission__id": 1000 + idx, "_submission__uuid": uid, "_submission__submission_time": when,
                        "_submission__validation_status": "", "_submission__notes": "", "_submission__status":
                        "submitted_via_web", "_submission__submitted_by": f"kader_{i % 7}",
                        "_submission___version__": "v1", "_submission__tags": ""})
            else:
                row = {"SubmissionDate": when, **row, "SET-OF-anggota": f"{key}/anggota", "meta-instanceID": key,
                       "meta-deprecatedID": prev or "", "KEY": key, "SubmitterID": 5, "SubmitterName": f"kader {i % 7}",
                       "AttachmentsPresent": 0, "AttachmentsExpected": 0, "Status": "", "ReviewState":
                       "edited" if v else "", "DeviceID": row["deviceid"], "Edits": v, "FormVersion": "1"}
                for k, m in enumerate(kids):
                    repeat.append({mname(c): m[c] for c in mcols if c != "no_kk"} | {
                        "PARENT_KEY": key, "KEY": f"{key}/anggota[{k + 1}]", "SET-OF-anggota": f"{key}/anggota"})
            main.append(row)
            prev = key
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if shape == "kobo-xlsx":
        return [_write_xlsx(out / f"{stem}_-_all_versions_-_{'labels' if labels else 'names'}.xlsx",
                            [(FORM_ID, main), ("anggota", repeat)])]
    if shape == "kobo-csv":
        return [_write_csv(out / f"{stem}_-_all_versions.csv", main, ";"),
                _write_csv(out / f"{stem}_-_all_versions_-_anggota.csv", repeat, ";")]
    return [_write_csv(out / f"{stem}.csv", main, ","), _write_csv(out / f"{stem}-anggota.csv", repeat, ",")]


def export_folder(native_dir, out_dir, shape: str, **options) -> list[Path]:
    """Every round of a folder of native exports written as the tool export ``shape`` (one export
    per round, named after the round), with the folder's other files (desa lokus and region lists).

    >>> export_folder("data/raw", "/tmp/kobo", "kobo-xlsx")  # doctest: +SKIP
    """
    native_dir, out, files = Path(native_dir), Path(out_dir), []
    pairs = [p for p in rawio.discover(native_dir) if p.tool is None]
    used = {q for p in pairs for q in (p.keluarga, p.anggota)}
    for i, p in enumerate(pairs):
        files += export_round(p.keluarga, p.anggota, out, shape, seed=options.pop("seed", 1) + i,
                              stem=f"{p.stem}_{FORM_ID}", **options)
    for f in sorted(native_dir.glob("*.csv")):
        if f not in used and f.is_file():
            out.mkdir(parents=True, exist_ok=True)
            target = out / f.name
            target.write_bytes(f.read_bytes())
            files.append(target)
    return files


def _write_csv(path: Path, rows: list[dict], sep: str) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), delimiter=sep,
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(buf.getvalue(), encoding="utf-8")
    return path


def _write_xlsx(path: Path, sheets: list[tuple[str, list[dict]]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title[:31])
        header = list(dict.fromkeys(k for r in rows for k in r))
        ws.append(header)
        for r in rows:
            ws.append([r.get(h) if r.get(h) != "" else None for h in header])
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(workbook_bytes(wb))
    return path
