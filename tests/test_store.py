"""The run record (pk2d.store): what a report stands on.

Checked here: a report never renders from a run that no longer matches its catalogue, inputs or
code; rerunning a stage with unchanged inputs changes no byte reports depend on and re-renders
nothing; a stage's outputs join the run together or not at all (also when the stage is killed);
a batch reads the run it pinned even when a stage commits a newer one meanwhile; two writers on
one folder do not mix their files.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pk2d import paths, store
from pk2d.errors import MissingInputError, RunLockedError, StaleRunError
from pk2d.lokus import read_lokus
from pk2d.pipeline import build_compare, build_index, clean
from pk2d.report import build_reports
from tests.conftest import KEY, copy_run

ROOT = Path(__file__).resolve().parents[1]
PONDOK_LABU = "63.02.06.2012"


def _own_raw(tmp_path: Path) -> Path:
    """A copy of the raw sample's Kotabaru files (its three rounds) and the desa lokus list, to change."""
    raw = tmp_path / "raw"
    raw.mkdir(parents=True)
    for f in [*paths.RAW_DIR.glob("SINTETIS_kotabaru_*.csv"), paths.RAW_DIR / "SINTETIS_desa_lokus.csv"]:
        shutil.copy2(f, raw / f.name)
    return raw


def _own_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run made from :func:`_own_raw` (raw folder, processed folder), to change."""
    raw = _own_raw(tmp_path)
    work = tmp_path / "processed"
    clean(raw, work, key=KEY)
    build_index(work, catalogues=("ikk",))
    build_compare(work, n_boot=19, n_runs=10)
    return raw, work


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


# --- the record ----------------------------------------------------------------------------
def test_the_record_knows_every_setting_and_holds_no_wall_clock_time(sample_run):
    run = store.open_run(sample_run)
    assert set(run.stages) == {"clean", "index", "compare"}
    cat = run.settings("index")["catalogues"]["ikk"]
    assert cat["content"]["categories"]["area"][2]["lower"] == 75 and len(cat["sha256"]) == 64
    assert run.rounds() == (1, 2, 3, 4) and run.latest_round() == 4 and run.round_or_latest(None) == 4
    cmp = run.settings("compare")
    assert (cmp["seed"], cmp["n_boot"], cmp["n_runs"]) == (20240710, 99, 50)
    assert sorted((x["kode_desa"], x["tahun"]) for x in cmp["lokus"]) == [
        (PONDOK_LABU, 2024), ("63.02.11.2005", 2023), ("63.09.03.2001", 2023), ("63.10.06.2007", 2025)]
    assert all(k.startswith(("raw/",)) for k in run.record("clean").inputs)
    assert run.record("index").inputs == {f"clean/{n}": run.record("clean").sha256(n)
                                          for n in ("families", "members")}
    text = (sample_run / store.RUN_FILE).read_text()
    assert "created" not in text and "T0" not in text and "rendered" not in text
    # today's date (it bounds interview dates) is recorded; the rebuild keys on it only when it is given
    assert run.settings("clean")["today"] and clean(paths.RAW_DIR, sample_run, key=KEY).up_to_date
    assert run.catalogue("ikk") == run.catalogue(None)  # the recorded content, rebuilt and validated
    with pytest.raises(MissingInputError):
        run.round_or_latest(7)


def test_every_module_is_in_exactly_one_code_list():
    listed = [*(f for files in store.STAGE_CODE.values() for f in files), *store.COMMON_CODE, *store.PRESENTATION_CODE]
    modules = sorted(p.relative_to(paths.PACKAGE_DIR).as_posix() for p in paths.PACKAGE_DIR.rglob("*.py"))
    assert sorted(f for f in listed if f.endswith(".py")) == modules  # a new module must say what it decides
    assert len(listed) == len(set(listed))


def test_no_run_is_a_clear_message(tmp_path):
    with pytest.raises(MissingInputError, match="run.json"):
        store.open_run(tmp_path)
    with pytest.raises(MissingInputError):
        build_index(tmp_path)


# --- stale runs never make a report ----------------------------------------------------------------
def test_a_catalogue_edited_after_indexing_stops_the_report(sample_run, tmp_path):
    work = tmp_path / "processed"
    cat_file = tmp_path / "ikk.yaml"
    shutil.copy(paths.CATALOGUE_DIR / "ikk.yaml", cat_file)
    shutil.copytree(sample_run, work, ignore=shutil.ignore_patterns("index", "compare", ".lock", ".pins"))
    rec = json.loads((work / store.RUN_FILE).read_text())
    rec["stages"] = {"clean": rec["stages"]["clean"]}
    (work / store.RUN_FILE).write_text(json.dumps(rec))
    build_index(work, catalogues=(str(cat_file),))
    build_compare(work, n_boot=19, n_runs=10)
    assert store.open_run(work).problems() == []

    raw = yaml.safe_load(cat_file.read_text())
    raw["categories"]["area"][2]["lower"] = 73.5  # a new cut-off, after the index was computed
    cat_file.write_text(yaml.safe_dump(raw, allow_unicode=True))
    out = tmp_path / "reports"
    with pytest.raises(StaleRunError) as info:
        build_reports(work, out, villages=[PONDOK_LABU], progress=False)
    msg = str(info.value)
    assert "catalogue ikk (ikk.yaml) was edited after `pk2d index` used it" in msg
    assert "pk2d index && pk2d compare" in msg and info.value.exit_code == 2
    assert not (out / "desa").exists()  # no report, not even a partial one
    from pk2d import report

    with pytest.raises(StaleRunError):  # a notebook opening the run gets the same stop
        report.village(PONDOK_LABU, processed_dir=work)


def test_changed_raw_input_and_code_are_named(tmp_path, monkeypatch):
    raw, work = _own_run(tmp_path)
    assert store.open_run(work).problems() == []
    lokus = raw / "SINTETIS_desa_lokus.csv"
    lokus.write_text(lokus.read_text() + "63.02,63.02.11.2005,Sangsang,2023\n")
    problems = [p for _, p in store.open_run(work, check=False).problems()]
    assert problems == [f"the desa lokus list in {raw} changed since `pk2d compare` read it"]
    f = next(raw.glob("*putaran2_keluarga.csv"))
    f.write_bytes(f.read_bytes() + b"\n")
    problems = [p for _, p in store.open_run(work, check=False).problems()]
    assert f"raw input {f.name} changed since `pk2d clean` read it" in problems
    with pytest.raises(StaleRunError, match="pk2d clean && pk2d index && pk2d compare"):
        store.open_run(work)
    monkeypatch.setitem(store.STAGE_CODE, "index", (*store.STAGE_CODE["index"], "text.py"))
    store.code_fingerprint.cache_clear()
    try:
        problems = [p for _, p in store.open_run(work, check=False).problems()]
        assert any("pk2d code of the index stage changed since it ran" in p for p in problems)
    finally:
        store.code_fingerprint.cache_clear()


def test_a_stage_rerun_makes_the_next_stage_stale_until_it_runs(tmp_path):
    raw, work = _own_run(tmp_path)
    # new data: clean and index again, but not compare
    f = next(raw.glob("*putaran1_keluarga.csv"))
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    f.write_text("".join(lines[:-50]), encoding="utf-8")  # fifty families fewer
    clean(raw, work, key=KEY)
    build_index(work, catalogues=("ikk",))
    with pytest.raises(StaleRunError) as info:
        build_reports(work, tmp_path / "r", villages=[PONDOK_LABU], progress=False)
    assert "the compare stage read index/scores of an earlier index run" in str(info.value)
    assert "`pk2d compare`" in str(info.value)


# --- unchanged inputs: the same bytes, nothing re-rendered ---------------------------------------------
def test_rerunning_unchanged_stages_changes_no_byte_and_renders_nothing(sample_run, tmp_path):
    work = copy_run(sample_run, tmp_path / "processed")
    out = tmp_path / "reports"
    first = build_reports(work, out, villages=[PONDOK_LABU], formats=("html",), jobs=1, progress=False)
    assert [r.status for r in first.results] == ["rendered"]
    rec_before = (work / store.RUN_FILE).read_bytes()
    report_tables = {n: b for n, b in _files(store.open_run(work).folder("compare")).items() if n.startswith("report_")}

    assert clean(paths.RAW_DIR, work, key=KEY).up_to_date  # unchanged: not recomputed
    assert build_index(work, catalogues=("ikk",)).up_to_date
    assert build_compare(work, n_boot=99, n_runs=50).up_to_date
    assert (work / store.RUN_FILE).read_bytes() == rec_before

    # recomputed from scratch on the same inputs: the files reports read are byte for byte the same
    assert not build_index(work, catalogues=("ikk",), force=True).up_to_date
    assert not build_compare(work, n_boot=99, n_runs=50, force=True).up_to_date
    run = store.open_run(work)
    assert {n: b for n, b in _files(run.folder("compare")).items() if n.startswith("report_")} == report_tables
    again = build_reports(work, out, villages=[PONDOK_LABU], formats=("html",), jobs=1, progress=False)
    assert [r.status for r in again.results] == ["skipped"], again.text()
    assert again.seconds < 30


def test_new_data_for_one_village_re_renders_that_village_only(sample_run, tmp_path):
    from pk2d.report.digests import run_context, salts, unit_digests

    run = store.open_run(sample_run)
    units = run.table("report_units")
    both = units[(units["unit"].isin([PONDOK_LABU, "63.02.11.2005"])) & (units["round"] == 1)]
    assert both["digest"].nunique() == 2
    tables = {n: run.table(n) for n in run.tables("compare") if n.startswith("report_")}
    cats = [run.catalogue(c) for c in run.catalogue_ids()]
    assert list(unit_digests(tables, units, salts(cats, run_context(run)))) == list(units["digest"])  # the stored digests are the rows' digests


# --- a stage's outputs arrive together or not at all -------------------------------------------------
KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from pk2d import partitions, pipeline
    original = partitions._write_table
    def slow(table, folder, *a, **k):
        rel = original(table, folder, *a, **k)
        print("WROTE", folder / rel, flush=True)
        time.sleep(30)  # killed here, after the first output of the stage was written
        return rel
    partitions._write_table = slow
    pipeline.build_index({work!r}, catalogues=("ikk",), force=True)
""")


def test_an_index_killed_half_way_leaves_the_run_as_it_was(sample_run, tmp_path):
    work = copy_run(sample_run, tmp_path / "processed")
    before = (work / store.RUN_FILE).read_bytes()
    gen_before = store.open_run(work).record("index").generation
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(root=str(ROOT), work=str(work)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("WROTE"), line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (work / store.RUN_FILE).read_bytes() == before  # the half-made stage is not part of the run
    run = store.open_run(work)
    assert run.record("index").generation == gen_before and run.problems() == []
    tmp_dirs = [d for d in (work / "index").iterdir() if d.name.startswith(".tmp-")]
    assert len(tmp_dirs) == 1  # its temporary folder, swept by the next stage that commits
    build_index(work, catalogues=("ikk",), force=True)
    assert not [d for d in (work / "index").iterdir() if d.name.startswith(".tmp-")]
    assert store.open_run(work).problems() == []


def test_a_pinned_run_outlives_a_newer_commit(sample_run, tmp_path):
    work = copy_run(sample_run, tmp_path / "processed")
    old = store.open_run(work)
    old_folder = old.folder("compare")
    with store.pinned(old):
        build_compare(work, n_boot=29, n_runs=10)  # a new run is committed while a batch reads the old one
        new = store.open_run(work)
        assert new.id != old.id and new.folder("compare") != old_folder
        assert old_folder.is_dir()  # kept: pinned
        pinned = store.open_run(work, run_id=old.id, check=False)
        assert pinned.problems() == [] or all("read" in p for _, p in pinned.problems())
        assert pinned.table("report_units").equals(old.table("report_units"))
    build_compare(work, n_boot=39, n_runs=10)  # the pin is gone: the old generation is collected
    assert not old_folder.exists()


def test_two_writers_on_one_folder_do_not_mix(sample_run, tmp_path):
    work = copy_run(sample_run, tmp_path / "processed")
    with store.folder_lock(work, "pk2d index"):
        with pytest.raises(RunLockedError, match="already running") as info:
            build_compare(work, n_boot=19, n_runs=10, force=True)
    assert info.value.exit_code == 2
    build_compare(work, n_boot=19, n_runs=10, force=True)  # once the other one has finished


# --- every desa lokus, every kabupaten ---------------------------------------------------------------
def test_every_desa_lokus_is_compared_and_evaluated(tmp_path):
    raw = _own_raw(tmp_path)
    (raw / "SINTETIS_desa_lokus.csv").write_text(
        "kode_kabupaten,kode_desa,nama_desa,tahun\n63.02,63.02.06.2012,Pondok Labu,2024\n"
        "63.02,63.02.11.2005,Sangsang,2024\n63.02,63.02.01.2008,Gedambaan,2022\n")
    assert list(read_lokus(raw)["kode_desa"]) == ["63.02.01.2008", "63.02.06.2012", "63.02.11.2005"]
    work = tmp_path / "processed"
    clean(raw, work, key=KEY)
    build_index(work, catalogues=("ikk",))
    res = build_compare(work, n_boot=19, n_runs=10)
    did = res.did.query("component_id == 'indeks'")
    # Gedambaan (lokus 2022) has no survey in or before 2022: no baseline, so no evaluation
    assert sorted(did["focus"]) == ["63.02.06.2012", "63.02.11.2005"]
    assert set(zip(did["before_round"], did["round"])) == {(2, 3)}  # baseline: the round of 2024
    # villages already desa lokus by 2025 are not comparison villages: 12 villages, three treated, 9 controls
    assert set(did["n_villages"]) == {10}
    fv = res.table("focus_vs")
    assert set(fv["focus"]) == {"63.02.01.2008", "63.02.06.2012", "63.02.11.2005"} and set(fv["round"]) == {1, 2, 3}
    units = res.run.table("report_units")
    assert units.loc[units["unit"].isin(did["focus"]), "lokus"].all()


def test_a_desa_lokus_with_one_round_gets_its_profile_without_a_change_section(tmp_path):
    one = _own_raw(tmp_path / "one")
    for f in one.glob("SINTETIS_kotabaru_202[45]_*.csv"):
        f.unlink()
    work1 = tmp_path / "one" / "processed"
    clean(one, work1, key=KEY)
    build_index(work1, catalogues=("ikk",))
    res1 = build_compare(work1, n_boot=19, n_runs=10)
    assert res1.did.empty
    from pk2d import report

    R = report.village(PONDOK_LABU, processed_dir=work1)
    assert R.round == 1 and R.change is None and R.did is None and len(R.problems) > 0
    P = report.province("63", processed_dir=work1)
    assert P.lokus_data["after_round"].isna().all() and "→" not in "".join(P.lokus.frame["DiD"].astype(str))


def test_a_damaged_generation_is_repaired_by_rerunning_its_stage(tmp_path):
    raw, work = _own_run(tmp_path)
    run = store.open_run(work)
    f = run.folder("clean") / "rejects.csv"
    f.write_text(f.read_text() + "x\n")  # someone edited an output by hand
    assert any("was changed after the stage wrote it" in p for _, p in store.open_run(work, check=False).problems())
    res = clean(raw, work, key=KEY)
    assert not res.up_to_date  # not taken for current: recomputed, and the damaged copy replaced
    assert store.open_run(work).problems() == []
    assert res.run.record("clean").generation == run.record("clean").generation  # the same, intact files


def test_a_re_saved_desa_lokus_file_renews_the_record_without_recomputing(tmp_path):
    raw, work = _own_run(tmp_path)
    lokus = raw / "SINTETIS_desa_lokus.csv"
    lokus.write_bytes(lokus.read_bytes().replace(b"\n", b"\r\n"))  # saved again by a spreadsheet: same list
    assert [p for _, p in store.open_run(work, check=False).problems()] == [
        f"the desa lokus list in {raw} changed since `pk2d compare` read it"]
    gen = store.open_run(work, check=False).record("compare").generation
    res = build_compare(work, n_boot=19, n_runs=10)
    assert res.up_to_date and res.run.record("compare").generation == gen
    assert store.open_run(work).problems() == []
