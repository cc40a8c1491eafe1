"""The bad-input corpus (tests/fixtures/corpus, made by its make_corpus.py from the synthetic
sample): every case through ``pk2d clean`` as a user runs it, at its expected outcome, and no
NIK, No. KK, name or birth date of its input anywhere in what it wrote or printed.

Expected outcomes are independent of the code under test: a variant must clean to exactly the
families and members of the base (the same ten families written plainly), or to the base with the
listed values, or reject exactly the listed rows by rule, or be refused with a message naming the
file, the place and the fix.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from pk2d import cli, store

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
CASES = sorted(p for p in (CORPUS / "cases").iterdir() if p.is_dir())
KEY = "kunci-korpus-uji"


def _expect(case: Path) -> dict:
    return json.loads((case / "expect.json").read_text(encoding="utf-8"))


def _clean(case: Path, out: Path, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setenv("PK2D_KEY", KEY)
    code = cli.main(["clean", "--raw", str(case / "raw"), "--processed", str(out)])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _base_rows(name: str) -> list[dict]:
    with open(CORPUS / "cases" / "a01_base" / "raw" / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _secrets() -> set[str]:
    """Every personal value of the base in the forms an export writes it."""
    fam, mem = _base_rows("desa_2023_putaran1_keluarga.csv"), _base_rows("desa_2023_putaran1_anggota.csv")
    interviews = {f["tanggal_wawancara"] for f in fam}
    out = set()
    for r in fam:
        out |= {r["no_kk"], r["nik_kepala"], r["nama_kepala"]}
    for m in mem:
        out |= {m["no_kk"], m["nik"], m["nama"]}
        if m["tanggal_lahir"] and m["tanggal_lahir"] not in interviews:
            d = dt.date.fromisoformat(m["tanggal_lahir"])
            out |= {d.isoformat(), d.strftime("%d/%m/%Y"), f"{d.month}/{d.day}/{d.year}", d.strftime("%d-%m-%Y")}
    ids = {v for v in out if v.isdigit() and len(v) == 16}
    out |= {v[:15] for v in ids} | {" ".join(v[i:i + 4] for i in range(0, 16, 4)) for v in ids}
    return {v for v in out if v}


SECRETS = _secrets()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus-base")
    mp = pytest.MonkeyPatch()
    mp.setenv("PK2D_KEY", KEY)
    try:
        assert cli.main(["clean", "--raw", str(CORPUS / "cases" / "a01_base" / "raw"), "--processed", str(out)]) == 0
    finally:
        mp.undo()
    run = store.open_run(out, check=False)
    fam, mem = run.table("families"), run.table("members")
    assert len(fam) == 10 and len(mem) == len(_base_rows("desa_2023_putaran1_anggota.csv"))
    return fam, mem


def _outputs(out: Path) -> str:
    parts = []
    for p in sorted(out.rglob("*")):
        if p.is_file():
            parts.append(p.name)
            if p.suffix == ".parquet":
                parts.append(pd.read_parquet(p).to_csv(index=False))
            else:
                parts.append(p.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_the_corpus_is_large_and_covers_every_outcome():
    outcomes = pd.Series([_expect(c)["outcome"] for c in CASES])
    assert len(CASES) >= 60 and set(outcomes) == {"accepted", "rejected", "refused"}
    assert (outcomes == "refused").sum() >= 20 and (outcomes == "rejected").sum() >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case, base, tmp_path, capsys, monkeypatch):
    exp = _expect(case)
    out = tmp_path / "processed"
    code, printed = _clean(case, out, capsys, monkeypatch)
    assert "Traceback" not in printed and "internal error" not in printed, printed
    if exp["outcome"] == "refused":
        assert code == 2, printed
        for part in exp["message"]:
            assert part in printed, (part, printed)
        assert not (out / store.RUN_FILE).exists()  # nothing recorded
    else:
        assert code == 0, printed
        run = store.open_run(out, check=False)
        fam, mem = run.table("families"), run.table("members")
        rejects = pd.read_csv(run.path("rejects"))
        got = {(r.table, int(r.row), r.column, r.rule) for r in rejects.itertuples()}
        b_fam, b_mem = base
        if exp["outcome"] == "accepted":
            assert got == set(), rejects.to_string()
            want = b_fam.copy()
            for table, i, column, value in exp.get("values", []):
                assert table == "families"
                want.loc[i, column] = value
            pd.testing.assert_frame_equal(fam, want, check_dtype=False)
            pd.testing.assert_frame_equal(mem, b_mem, check_dtype=False)
        else:
            assert got == {tuple(r) for r in exp["rejects"]}, rejects.to_string()
            assert (len(fam), len(mem)) == (exp["families"], exp["members"])
            want_f = b_fam[b_fam["id_keluarga"].isin(fam["id_keluarga"])].reset_index(drop=True)
            want_m = b_mem[b_mem["id_anggota"].isin(mem["id_anggota"])].reset_index(drop=True)
            pd.testing.assert_frame_equal(fam, want_f, check_dtype=False)
            pd.testing.assert_frame_equal(mem, want_m, check_dtype=False)
            assert "nilai tidak ditampilkan" in " ".join(rejects["message"]) or not any(
                r in {"format_tidak_dikenal", "kode_tidak_dikenal", "di_luar_rentang"} for *_x, r in got)
    # nothing personal anywhere: outputs, the log, the record, the messages
    written = (_outputs(out) if out.exists() else "") + "\n" + printed
    secrets = SECRETS | set(exp.get("secrets", []))
    leaked = sorted(s for s in secrets if s.lower() in written.lower())
    assert leaked == [], f"personal values in the outputs or messages: {len(leaked)}"
