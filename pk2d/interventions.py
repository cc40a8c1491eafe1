"""The cadres' intervention lists of one village: which families (pseudonymous ids) to visit, per RT.

The compare stage keeps, for every village and problem indicator, the
pseudonymous ids of the families that do not meet it
(:func:`pk2d.compare.intervention_families`, table ``intervention_families``).
:func:`export_interventions` writes one village's lists as a workbook for the
village team, into ``data/processed/exports/`` only: a list of families is
never published (no report, no index page, no agencies' workbook holds it).
The pseudonyms are those of the clean stage (keyed HMAC): the village team
matches them to its own family register with the key holder, never through
pk2d.

>>> export_interventions("63.02.06.2012")  # doctest: +SKIP
PosixPath('data/processed/exports/63.02.06.2012-pondok-labu-intervensi-putaran-2.xlsx')
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import defaults, paths
from .catalogue import agency_name
from .errors import AreaNotFoundError
from .render.unit import safe_code, slugify
from .store import open_run
from .text import lang_of, t

EXPORTS_SUBDIR = "exports"


def intervention_lists(village: str, *, round: int | None = None, catalogue=None, processed_dir=None,
                       lang: str = defaults.LANG) -> tuple[dict, pd.DataFrame]:
    """(facts, rows) of one village's intervention lists on the current run (checked): ``facts`` names
    the village, round and run; ``rows`` one per family and problem indicator, sorted by RT and
    priority: ``rt``, ``priority``, ``indicator``, ``indicator_name``, ``agency``, ``agency_name``,
    ``id_keluarga``."""
    pdir = Path(processed_dir) if processed_dir else paths.PROCESSED_DIR
    run = open_run(pdir)
    cat = run.catalogue(catalogue)
    code = str(village).strip()
    kab = [("kode_kabupaten", "==", code[:5])]  # a village's code starts with its kabupaten's: one partition
    areas = run.table("areas", columns=["catalogue", "round", "level", "code", "name", "parent_code"],
                      filters=[("catalogue", "==", cat.id), *kab])
    mine = areas[(areas["level"] == "desa") & (areas["code"] == code)]
    if mine.empty:
        desa = run.table("areas", columns=["code"], filters=[("catalogue", "==", cat.id), ("level", "==", "desa")])
        known = ", ".join(sorted(desa["code"].unique())[:3]) or "-"
        raise AreaNotFoundError("desa", code, f"not surveyed in this run ({cat.id})",
                                fix=f"Use a 10-digit village code, e.g. {known}.")
    rnd = int(mine["round"].max()) if round is None else run.round_or_latest(round)
    if rnd not in set(mine["round"].astype(int)):
        raise AreaNotFoundError("desa", code, f"not surveyed in round {rnd}",
                                fix=f"Use one of its rounds: {', '.join(str(int(r)) for r in sorted(mine['round']))}.")
    fam = run.table("intervention_families", filters=[("catalogue", "==", cat.id), ("round", "==", rnd),
                                                       ("kode_desa", "==", code), *kab])
    rts = areas[(areas["level"] == "rt") & (areas["round"] == rnd)].set_index("code")["name"]
    lang = lang_of(lang)
    inds = {i.id: i for i in cat.indicators}
    rows = pd.DataFrame({
        "rt": fam["kode_rt"].map(rts).fillna(fam["kode_rt"]).astype(str).to_numpy(),
        "kode_rt": fam["kode_rt"].astype(str).to_numpy(), "priority": fam["priority"].astype("int64").to_numpy(),
        "indicator": fam["indicator"].astype(str).to_numpy(),
        "indicator_name": [(inds[i].name_en if lang == "en" else inds[i].name_id) if i in inds else i
                           for i in fam["indicator"]],
        "agency": fam["agency"].astype(str).to_numpy(),
        "agency_name": [agency_name(a, lang) for a in fam["agency"]],
        "id_keluarga": fam["id_keluarga"].astype(str).to_numpy()})
    rows = rows.sort_values(["kode_rt", "priority", "id_keluarga"], kind="stable").reset_index(drop=True)
    row = mine[mine["round"] == rnd].iloc[0]
    facts = {"code": code, "name": str(row["name"]), "round": rnd, "run_id": run.id, "catalogue": cat.id,
             "n_families": int(rows["id_keluarga"].nunique()), "n_rows": len(rows)}
    return facts, rows


def export_interventions(village: str, *, round: int | None = None, catalogue=None, processed_dir=None,
                         lang: str = defaults.LANG) -> Path:
    """Write ``<processed>/exports/<code>-<name>-intervensi-putaran-<r>.xlsx`` (a summary sheet, all
    lists, and one sheet per RT for its cadre) and return its path; raises
    :class:`~pk2d.errors.OutputFolderError` before building it when that folder cannot be written."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from .io import atomic_path, ensure_writable_dir

    pdir = Path(processed_dir) if processed_dir else paths.PROCESSED_DIR
    facts, rows = intervention_lists(village, round=round, catalogue=catalogue, processed_dir=pdir, lang=lang)
    ensure_writable_dir(pdir / EXPORTS_SUBDIR, "The exports folder (--processed)")
    lang = lang_of(lang)

    def T(key, **kw):  # noqa: N802
        return t(f"interventions.{key}", lang, **kw)

    head = [T("col_rt"), T("col_priority"), T("col_indicator"), T("col_indicator_name"), T("col_agency"),
            T("col_family"), T("col_visited"), T("col_notes")]
    wb = Workbook()
    ws = wb.active
    ws.title = T("sheet_summary")
    for line in (T("title", name=facts["name"], code=facts["code"]), T("round", round=facts["round"]),
                 T("counts", families=facts["n_families"], rows=facts["n_rows"]), T("warning"), T("how_to"),
                 T("source", run=facts["run_id"], catalogue=facts["catalogue"])):
        ws.append([line])
    ws["A1"].font = Font(bold=True, size=13)
    ws["A4"].font = Font(bold=True)
    ws.column_dimensions["A"].width = 120

    def sheet(title, frame):
        s = wb.create_sheet(title[:31])
        s.append(head)
        for c in s[1]:
            c.font = Font(bold=True)
        for r in frame.itertuples(index=False):
            s.append([r.rt, int(r.priority), r.indicator, r.indicator_name, r.agency_name, r.id_keluarga, None, None])
        s.freeze_panes = "A2"
        for col, w in zip("ABCDEFGH", (8, 9, 9, 48, 40, 22, 14, 30)):
            s.column_dimensions[col].width = w
    sheet(T("sheet_all"), rows)
    for kode_rt, g in rows.groupby("kode_rt", sort=True):
        sheet(T("sheet_rt", rt=g["rt"].iloc[0]), g)
    out = pdir / EXPORTS_SUBDIR / (f"{safe_code(facts['code'])}-{slugify(facts['name'])}-intervensi-putaran-"
                                    f"{facts['round']}.xlsx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        wb.save(tmp)
    return out
