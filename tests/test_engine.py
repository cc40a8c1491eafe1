"""The Dask engine (pk2d.engine) gives the runs of the in-process engine, file for file.

Both engines run the same per-kabupaten functions; these tests run the stages both ways on the sample,
on a synthetic set of several kabupaten and two rounds, and on a sample survey (weights, strata, PSUs),
and compare every output table (and, since the outputs are named by their hashes, the whole run). One
test starts a real cluster with Dask's own commands (``dask scheduler``, ``dask worker``) on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pk2d import paths, pipeline
from pk2d.engine import DaskEngine, EngineError, open_engine

KEY = b"engine-test-key"
TODAY = "2026-06-30"
DRAWS = {"n_boot": 19, "n_runs": 8}  # few draws: the same ones either way
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster():
    with open_engine("dask", workers=2) as eng:
        yield eng


@pytest.fixture(scope="module")
def kabupaten_set(tmp_path_factory):
    """Three kabupaten of two villages each, two rounds (synth scale mode: one pair of files per kabupaten
    and round), one desa lokus per kabupaten (so that there is a difference-in-differences)."""
    from pk2d import rawio
    from pk2d.synth import synthesize

    base = tmp_path_factory.mktemp("kab")
    cfg = yaml.safe_load((paths.REFERENCE_DIR / "synth_villages.yaml").read_text(encoding="utf-8"))
    cfg["scale"]["villages_per_kabupaten"] = 2
    (base / "villages.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    synthesize(base / "raw", families=2700, seed=5, rounds=2, villages_file=base / "villages.yaml")
    first = [rawio.read_table(p, "keluarga").data for p in sorted((base / "raw").glob("*putaran1_keluarga.csv"))]
    lokus = pd.concat([f[["kode_kabupaten", "kode_desa", "nama_desa"]].iloc[:1] for f in first]).assign(tahun=2023)
    lokus.to_csv(base / "raw" / "SINTETIS_desa_lokus.csv", index=False)
    return base / "raw"


def _stages(raw, pdir, engine, compare=True):
    pipeline.clean(raw, pdir, key=KEY, engine=engine)  # today's date, as the CLI's
    pipeline.build_index(pdir, engine=engine)
    if compare:
        pipeline.build_compare(pdir, engine=engine, **DRAWS)
    return json.loads((Path(pdir) / "run.json").read_text())


def _tables(pdir) -> dict[str, pd.DataFrame]:
    from pk2d.store import open_run

    run = open_run(pdir, check=False)
    names = {k.split("/")[0].removesuffix(".parquet") for s in run.stages.values() for k in s.outputs
             if k.endswith(".parquet")}
    return {n: run.table(n) for n in sorted(names)}


def _same_tables(a, b):
    ta, tb = _tables(a), _tables(b)
    assert sorted(ta) == sorted(tb) and {"families", "members", "scores", "areas", "area_components"} <= set(ta)
    for name, x in ta.items():
        pd.testing.assert_frame_equal(x, tb[name], check_exact=False, rtol=1e-9, atol=1e-9, obj=name)


@pytest.fixture(scope="module")
def kabupaten_runs(cluster, kabupaten_set, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return {name: (base / name, _stages(kabupaten_set, base / name, eng))
            for name, eng in (("local", "local"), ("dask", cluster))}


@pytest.mark.parametrize("data", ["sample", "kabupaten"])
def test_both_engines_make_the_same_run(data, cluster, kabupaten_runs, tmp_path):
    if data == "sample":  # its compare stage (a minute) is that of the kabupaten set's, on more data
        runs = {name: (tmp_path / name, _stages(paths.RAW_DIR, tmp_path / name, eng, compare=False))
                for name, eng in (("local", "local"), ("dask", cluster))}
    else:
        runs = kabupaten_runs
    (a, local), (b, dask) = runs["local"], runs["dask"]
    _same_tables(a, b)
    # every file of every stage is the same, byte for byte (a generation is named by its files' hashes)
    assert {s: r["generation"] for s, r in local["stages"].items()} == {
        s: r["generation"] for s, r in dask["stages"].items()}
    assert local["id"] == dask["id"]
    kabs = {k.split("/")[2] for k in local["stages"]["clean"]["outputs"] if k.startswith("families/kode")}
    assert len(kabs) == 3  # one partition per kabupaten
    if data == "kabupaten":  # the comparisons of every kabupaten and round, and each desa lokus's DiD
        tables = _tables(a)
        assert tables["league"]["kabupaten"].nunique() == 3 and tables["league"]["round"].nunique() == 2
        assert len(tables["did"]) > 0 and len(tables["focus_vs"]) > 0


def _stored(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as a Parquet file gives it back (the types the run's tables have)."""
    import io

    return pd.read_parquet(io.BytesIO(df.to_parquet(index=False)))


def test_a_sample_survey_is_estimated_on_its_whole_design(cluster, tmp_path):
    """Weights, strata and PSUs: the index stage's areas are those of estimate_areas on all the scores."""
    from pk2d import synth_sample as SS, synth_superpop as SP
    from pk2d.areas import estimate_areas
    from pk2d.catalogue import load_catalogue
    from pk2d.score import score_families

    kec = ["63.02.01"] * 4 + ["63.02.02"] * 4
    vil = pd.DataFrame({"kode_desa": [f"{k}.{2001 + i}" for i, k in enumerate(kec)],
                        "nama_desa": [f"Desa {i}" for i in range(8)], "kode_kecamatan": kec,
                        "nama_kecamatan": [f"Kec {k[-2:]}" for k in kec],
                        "level": [66.0, 70.0, 74.0, 78.0, 68.0, 72.0, 76.0, 80.0], "n_rt": [5, 6, 7, 8, 5, 6, 7, 8],
                        "kk_per_rt": 12})
    sp = SP.SuperPopulation(vil, years=(2023, 2024))
    pop = SP.draw_population(sp, SP.truth(sp, pool=2000, icc=False), seed=11)
    SS.write_raw(pop, sp, tmp_path / "raw", sample=SS.draw_sample(pop, sp, seed=3))
    for name, eng in (("local", "local"), ("dask", cluster)):
        pipeline.clean(tmp_path / "raw", tmp_path / name, key=KEY, today=TODAY, engine=eng)
        pipeline.build_index(tmp_path / name, engine=eng, lonely_psu="adjust")
    from pk2d.store import open_run

    got = pipeline.IndexResult(open_run(tmp_path / "dask", check=False), False)
    families, members = pipeline.load_processed(tmp_path / "local")
    assert families["bobot"].notna().all() and not got.areas["census"].any()
    for cid in ("ikk", "ibangga"):
        cat = load_catalogue(cid)
        want = estimate_areas(score_families(families, members, cat), cat, lonely_psu="adjust")
        key = ["round", "level", "code"]
        a = got.areas[got.areas["catalogue"] == cid].sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(a, _stored(want.areas).sort_values(key, ignore_index=True),
                                      check_exact=False, rtol=1e-9, atol=1e-12)
        key = ["round", "level", "code", "component_type", "component_id"]
        c = got.components[got.components["catalogue"] == cid].sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(c, _stored(want.components).sort_values(key, ignore_index=True),
                                      check_exact=False, rtol=1e-9, atol=1e-12)
    a, b = (json.loads((tmp_path / n / "run.json").read_text()) for n in ("local", "dask"))
    assert a["id"] == b["id"]


def test_an_input_error_in_a_worker_reaches_the_command_as_it_was_raised(cluster, tmp_path):
    from pk2d.errors import InputFileError

    raw = tmp_path / "raw"
    shutil.copytree(paths.RAW_DIR, raw)
    fam = sorted(raw.glob("*putaran1_keluarga.csv"))[0]
    fam.write_text(fam.read_text(encoding="utf-8").replace("kode_desa", "kode_dsa", 1), encoding="utf-8")
    messages = []
    for eng in ("local", cluster):
        with pytest.raises(InputFileError) as info:
            pipeline.clean(raw, tmp_path / "p", key=KEY, today=TODAY, engine=eng)
        messages.append((info.value.path, str(info.value)))
    assert messages[0] == messages[1] and fam.name in messages[0][0]
    assert not (tmp_path / "p" / "run.json").exists()


def test_contradictory_engine_options_are_refused(tmp_path, capsys):
    from pk2d.cli import main

    for argv, words in ((["index", "--workers", "2"], "need --engine dask"),
                        (["index", "--engine", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
                        (["run", "--engine", "dask", "--scheduler", "127.0.0.1:8786"], "not an address"),
                        (["compare", "--engine", "dask", "--workers", "0"], "at least one worker")):
        assert main([*argv, "--processed", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    with pytest.raises(EngineError, match="no scheduler answers at tcp://127.0.0.1:9"):
        DaskEngine(scheduler="tcp://127.0.0.1:9", timeout=2)


def test_a_cluster_started_with_dasks_own_commands(kabupaten_set, kabupaten_runs, tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; `pk2d ... --scheduler` runs on them."""
    if not (BIN / "dask").exists():
        pytest.skip("the dask command is not installed next to this python")
    env = {**os.environ, "PK2D_KEY": KEY.decode(), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(file)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        procs += [subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                                    "--name", f"w{i}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for i in range(2)]
        from dask.distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        for stage in (["clean", "--raw", str(kabupaten_set)], ["index"], ["compare", "--n-boot", "19", "--n-runs", "8"]):
            done = subprocess.run([str(BIN / "pk2d"), *stage, "--processed", str(tmp_path / "cluster"), "--engine",
                                   "dask", "--scheduler", address], env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stderr
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    a = kabupaten_runs["local"][1]
    b = json.loads((tmp_path / "cluster" / "run.json").read_text())
    assert {s: r["generation"] for s, r in a["stages"].items()} == {s: r["generation"] for s, r in b["stages"].items()}


def test_clean_groups_that_share_keys_are_cleaned_together(tmp_path, monkeypatch, caplog):
    """However the pairs are first grouped (each alone, as usual, all in one = one process), the outputs
    are the same files: groups that share a No. KK, a NIK or a region code are merged and cleaned again,
    and only the final groups' parts are kept. The raw folder has the sample and a corrected copy of one
    round under another name, whose every family conflicts with the original (so all are rejected)."""
    from pk2d import clean_stage, cleaning

    raw = tmp_path / "raw"
    shutil.copytree(paths.RAW_DIR, raw)
    for table in ("keluarga", "anggota"):
        src = raw / f"SINTETIS_tabalong_2023_putaran1_{table}.csv"
        df = pd.read_csv(src, dtype=str, keep_default_na=False)
        if table == "keluarga":
            df["dusun"] = "Dusun Revisi"
        df.to_csv(raw / f"SINTETIS_tabalong_revisi_2023_putaran1_{table}.csv", index=False)
    groupings = {"usual": clean_stage.first_groups, "alone": lambda pairs: [[i] for i in range(len(pairs))],
                 "one": lambda pairs: [list(range(len(pairs)))]}
    out = {}
    for name, grouping in groupings.items():
        monkeypatch.setattr(clean_stage, "first_groups", grouping)
        with caplog.at_level("INFO", logger="pk2d.clean_stage"):
            caplog.clear()
            res = cleaning.clean(raw, tmp_path / name, key=KEY, today=TODAY)
        out[name] = {p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
                     for p in (tmp_path / name).rglob("*") if p.is_file()}
        assert ("cleaned again together" in caplog.text) == (name != "one")
    assert res.log["rules"]["keluarga"]["kk_ganda_bertentangan"] > 100
    assert sorted(out["one"]) == sorted(out["usual"]) == sorted(out["alone"]) and len(out["one"]) > 8
    for rel, data in out["one"].items():
        assert out["usual"][rel] == data and out["alone"][rel] == data, rel


def test_reports_are_rendered_on_the_workers(cluster, kabupaten_runs, tmp_path):
    from pk2d.report.batch import build_reports
    from pk2d.store import open_run

    pdir = kabupaten_runs["dask"][0]
    village = open_run(pdir, check=False).table("areas").query("level == 'desa'")["code"].iloc[0]
    summary = build_reports(pdir, tmp_path / "r", villages=[village], formats=("html",), progress=False,
                            engine=cluster)
    assert summary.ok and [r.status for r in summary.results] == ["rendered"]
    page = next((tmp_path / "r" / "desa").glob("*.html")).read_text(encoding="utf-8")
    assert village in page and json.loads((tmp_path / "r" / "_manifest.json").read_text())["units"]


def test_merged_groups_follow_every_shared_key():
    from pk2d.clean_stage import merged

    k = lambda *v: np.array(v, dtype=np.uint64)  # noqa: E731
    assert merged([[0], [1], [2], [3]], [k(1), k(2), k(3, 1), k(2, 9)]) == [[0, 2], [1, 3]]
    assert merged([[0], [1], [2]], [k(1), k(1, 2), k(2)]) == [[0, 1, 2]]  # a chain
    assert merged([[0, 3], [1], [2]], [k(5), k(6), k(7)]) == [[0, 3], [1], [2]]


def test_the_workbook_leaves_out_rt_rows_beyond_its_limit(kabupaten_runs, monkeypatch):
    from pk2d import defaults
    from pk2d.catalogue import load_catalogue
    from pk2d.store import open_run

    run = open_run(kabupaten_runs["local"][0], check=False)
    areas, comps = run.table("areas"), run.table("area_components")
    cats = [load_catalogue(c) for c in run.catalogue_ids()]
    whole = pipeline._workbook(areas, comps, cats)
    col = [c for c in whole["IKK wilayah"].columns if whole["IKK wilayah"][c].astype(str).eq("desa").any()][0]
    assert whole["IKK wilayah"][col].eq("rt").any()
    monkeypatch.setattr(defaults, "WORKBOOK_MAX_ROWS", 50)
    cut = pipeline._workbook(areas, comps, cats)
    assert not cut["IKK wilayah"][col].eq("rt").any()
    assert len(cut["IKK wilayah"]) == int(((areas["catalogue"] == "ikk") & (areas["level"] != "rt")).sum())
    assert cut["Metode"]["Nilai"].str.contains("RT, ").sum() == 2  # one note per catalogue


def test_parts_a_worker_wrote_elsewhere_stop_the_stage(tmp_path):
    """A worker that does not share the folder writes its parts on its own disk: seen from the command,
    they are missing (or of another size), and the stage stops instead of recording empty tables."""
    from pk2d.engine import check_written

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "part-0.parquet").write_bytes(b"1234")
    check_written(tmp_path, {"a/part-0.parquet": 4})
    for files in ({"a/part-0.parquet": 5}, {"b/part-0.parquet": 4}):
        with pytest.raises(EngineError, match="does not see"):
            check_written(tmp_path, files)


def test_the_stage_notebooks_take_the_engine(caplog):
    """`pk2d run --engine dask` passes ``engine`` and its cluster's ``scheduler`` to each stage notebook:
    papermill must read both from the parameters cell (it skips a line it cannot parse, with a warning)."""
    import papermill as pm

    for nb in pipeline.STAGE_NOTEBOOKS:
        caplog.clear()
        declared = pm.inspect_notebook(str(paths.NOTEBOOKS_DIR / nb))
        assert {"engine", "scheduler"} <= set(declared), nb
        assert "Unable to parse" not in caplog.text, nb


def _sorted(df: pd.DataFrame, key) -> pd.DataFrame:
    return df.sort_values(key, ignore_index=True)


def test_census_areas_of_every_level_are_those_of_the_whole_scores(kabupaten_runs):
    """The tasks estimate RT to kabupaten from their own families and the command adds the province up from
    their kabupaten totals: every row equals estimate_areas on all the families at once (the independent
    reference here), in both catalogues and rounds."""
    from pk2d.areas import estimate_areas
    from pk2d.catalogue import load_catalogue
    from pk2d.score import score_families
    from pk2d.store import open_run

    pdir = kabupaten_runs["local"][0]
    run = open_run(pdir, check=False)
    families, members = pipeline.load_processed(pdir)
    areas, comps = run.table("areas"), run.table("area_components")
    assert set(areas["level"]) == {"rt", "desa", "kecamatan", "kabupaten", "provinsi"}
    for cid in ("ikk", "ibangga"):
        cat = load_catalogue(cid)
        want = estimate_areas(score_families(families, members, cat), cat)
        key = ["round", "level", "code"]
        pd.testing.assert_frame_equal(_sorted(areas[areas["catalogue"] == cid], key), _sorted(_stored(want.areas), key),
                                      check_exact=False, rtol=1e-12, atol=1e-12)
        key += ["component_type", "component_id"]
        pd.testing.assert_frame_equal(_sorted(comps[comps["catalogue"] == cid], key),
                                      _sorted(_stored(want.components), key), check_exact=False, rtol=1e-12, atol=1e-12)
    # each kabupaten's rows in its own part, the province's in the partition without a kabupaten
    parts = [p["values"] for p in run.partitions("areas")]
    assert len(parts) == 4 and parts[-1]["kode_kabupaten"] is None


def test_a_census_round_and_a_sample_round_of_one_kabupaten_share_its_part(cluster, kabupaten_set, tmp_path):
    """Round 1 a census (its areas from the tasks' totals), round 2 a sample with weights, strata and PSUs
    (estimated on its whole design by the command, its rows joining each kabupaten's part): both engines
    give the same files, and every row is that of estimate_areas on its round."""
    from pk2d import partitions
    from pk2d.areas import estimate_areas
    from pk2d.catalogue import load_catalogue
    from pk2d.score import score_families
    from pk2d.store import open_run

    raw = tmp_path / "raw"
    shutil.copytree(kabupaten_set, raw)
    rng = np.random.default_rng(4)
    from pk2d import rawio

    for f in sorted(raw.glob("*putaran2_keluarga.csv")):  # each written its own way: read as pk2d reads it
        df = rawio.read_table(f, "keluarga").data.drop(columns=["_file", "_row"]).astype(object).fillna("")
        df["bobot"] = rng.integers(2, 9, len(df)).astype(str)
        df["strata"] = df["kode_kecamatan"]
        df["psu"] = df["kode_desa"] + "-" + df["rt"]
        df.to_csv(f, index=False)
    for name, eng in (("local", "local"), ("dask", cluster)):
        pipeline.clean(raw, tmp_path / name, key=KEY, today=TODAY, engine=eng)
        pipeline.build_index(tmp_path / name, engine=eng, lonely_psu="adjust")
    a, b = (json.loads((tmp_path / n / "run.json").read_text()) for n in ("local", "dask"))
    assert a["id"] == b["id"]
    run = open_run(tmp_path / "local", check=False)
    families, members = pipeline.load_processed(tmp_path / "local")
    areas, comps = run.table("areas"), run.table("area_components")
    assert set(areas.loc[areas["round"] == 1, "census"]) == {True} and set(areas.loc[areas["round"] == 2, "census"]) == {False}
    for cid in ("ikk", "ibangga"):
        cat = load_catalogue(cid)
        s = score_families(families, members, cat)
        for rnd in (1, 2):
            want = estimate_areas(s[s["putaran"] == rnd], cat, lonely_psu="adjust")
            key = ["level", "code"]
            got = areas[(areas["catalogue"] == cid) & (areas["round"] == rnd)]
            pd.testing.assert_frame_equal(_sorted(got, key), _sorted(_stored(want.areas), key),
                                          check_exact=False, rtol=1e-9, atol=1e-12)
            key += ["component_type", "component_id"]
            got = comps[(comps["catalogue"] == cid) & (comps["round"] == rnd)]
            pd.testing.assert_frame_equal(_sorted(got, key), _sorted(_stored(want.components), key),
                                          check_exact=False, rtol=1e-9, atol=1e-12)
    first = partitions.read(run.path("areas"), paths=[run.partitions("areas")[0]["path"]])
    for cid, rows in first.groupby("catalogue", sort=False):  # one part per kabupaten: catalogue, round, level
        assert rows["round"].tolist() == sorted(rows["round"]), cid
    assert set(first["round"]) == {1, 2}
    designs = run.settings("index")["estimation"]["ikk"]["designs"]
    assert designs["1"]["census"] and not designs["2"]["census"]


def test_every_task_runs_with_one_blas_thread_in_either_engine(cluster):
    """So that a matrix product sums in the same order wherever it runs (the engine changes no bit)."""
    for eng in ("local", cluster):
        with open_engine(eng) as e:
            assert e.map(_blas_threads, [0, 1]) == [1, 1]


def _blas_threads(_):
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)


def test_a_report_worker_reads_the_rows_of_its_own_kabupaten_only(kabupaten_runs):
    """Each worker of a batch renders whole kabupaten (render.workers.shares) and preloads only their
    partitions of the report tables (report.sections.preload), not the run's."""
    from pk2d.render.workers import partition_of, shares
    from pk2d.report import sections
    from pk2d.store import open_run

    run = open_run(kabupaten_runs["local"][0], check=False)
    units = run.table("report_units")
    kab = sorted(units.loc[units["kind"] == "kabupaten", "unit"].unique())
    assert len(kab) == 3
    sections._PRELOADED.clear()
    sections.preload(run.processed_dir, run.id, [["63", kab[1]]])
    for (rid, table), (df, _, _) in sections._PRELOADED.items():
        if len(df):
            codes = df["unit"].astype(str)
            assert codes.str.startswith(kab[1]).all(), table
    assert any(len(df) for df, _, _ in sections._PRELOADED.values())
    # a unit of another kabupaten is read from the run, not given the empty rows of the preload
    other = units[(units["kind"] == "desa") & ~units["unit"].str.startswith(kab[1])].iloc[0]
    u = sections.Unit(run, "desa", other["unit"], int(other["round"]), run.catalogue(other["catalogue"]))
    assert len(u.rows("report_facts")) == 1 and len(u.rows("report_indicators")) > 0
    sections._PRELOADED.clear()
    from types import SimpleNamespace as U

    todo = [(U(kind=k, code=c), None, ()) for k, c in units[["kind", "unit"]].drop_duplicates().itertuples(index=False)]
    dealt = shares(todo, 2)
    assert sorted(len(s) for s in dealt) and sum(len(s) for s in dealt) == len(todo)
    owners = {}
    for i, share in enumerate(dealt):
        for u, _, _ in share:
            assert owners.setdefault(partition_of(u), i) == i  # a kabupaten is never split between workers
