"""pk2d benchmarks: each stage timed against a baseline measured in the same run.

    make bench                                  # 90,000 families, then the report batch (benchmarks/reports.py)
    .venv/bin/python benchmarks/run.py --families 1000000

Machines are shared and noisy, so the numbers that matter are the RATIOS
against a baseline measured on the same machine in the same run (best of
``--repeat`` runs each):

* synth  vs writing the same rows with ``DataFrame.to_csv`` (the output floor)
* clean  vs reading the same CSV files with pyarrow (the input floor)
* score  vs a naive row-by-row implementation (``DataFrame.apply``) on a
  sample, scaled per family: the ratio is the vectorised code's cost share
* areas  vs one ``groupby().mean()`` of the index per village (the floor)
The report batch has its own benchmark, ``benchmarks/reports.py`` (a plain serial
``papermill`` + ``nbconvert`` loop as its baseline).

Generated data goes to ``benchmarks/_data/`` (git-ignored). Nothing here is
a test: no timing is asserted anywhere.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_family_index(fam_row: pd.Series, members: pd.DataFrame, cat) -> float:
    """Row-by-row reference: the way a spreadsheet macro would score one family."""
    from pk2d.features import family_features
    from pk2d.score import aggregate, effective_values, indicator_table

    f = fam_row.to_frame().T.reset_index(drop=True)
    feats = family_features(f, members)
    frame = pd.concat([f.drop(columns=[c for c in feats.columns if c in f.columns]), feats], axis=1)
    values, applies = indicator_table(frame, cat)
    _, comp = aggregate(effective_values(values, applies, "reweight"), cat)
    return float(comp[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", type=int, default=90_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args(argv)

    from pk2d.catalogue import load_catalogue
    from pk2d.cleaning import clean
    from pk2d.pipeline import load_processed
    from pk2d.score import score_families
    from pk2d.areas import estimate_areas
    from pk2d.synth import synthesize

    rows = []
    raw = DATA / f"raw_{a.families}"
    work = Path(tempfile.mkdtemp(prefix="pk2d-bench-"))
    try:
        t_synth = best(lambda: synthesize(raw, families=a.families, rounds=1, seed=1), 1)
        files = sorted(raw.glob("*.csv"))
        frames = [pd.read_csv(f, dtype=str) for f in files]
        t_write = best(lambda: [df.to_csv(work / f"copy{i}.csv", index=False) for i, df in enumerate(frames)], 1)
        rows.append(("synth", a.families, t_synth, t_write, "to_csv of the same rows"))

        import pyarrow.csv as pacsv
        t_read = best(lambda: [pacsv.read_csv(f) for f in files], a.repeat)
        t_clean = best(lambda: clean(raw, work / "processed", key=b"bench"), a.repeat)
        rows.append(("clean", a.families, t_clean, t_read, "pyarrow read of the CSVs"))

        fam, mem = load_processed(work / "processed")
        cat = load_catalogue("ikk")
        t_score = best(lambda: score_families(fam, mem, cat), a.repeat)
        n_naive = 300
        sample = fam.head(n_naive)
        mem_s = mem[mem["id_keluarga"].isin(sample["id_keluarga"])]
        t0 = time.perf_counter()
        for _, r in sample.iterrows():
            naive_family_index(r, mem_s[mem_s["id_keluarga"] == r["id_keluarga"]], cat)
        t_naive = (time.perf_counter() - t0) / n_naive * len(fam)
        rows.append(("score (IKK)", len(fam), t_score, t_naive, f"row-by-row, {n_naive} families scaled"))

        scores = score_families(fam, mem, cat)
        t_areas = best(lambda: estimate_areas(scores, cat), a.repeat)
        t_group = best(lambda: scores.groupby(["putaran", "kode_desa"])["indeks"].mean(), a.repeat)
        rows.append(("areas (5 levels, 35 components)", len(fam), t_areas, t_group, "groupby mean of the index"))

    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'stage':<34} {'n':>9} {'seconds':>9} {'baseline':>9} {'ratio':>7}  baseline")
    for stage, n, t, base, what in rows:
        print(f"{stage:<34} {n:>9,} {t:>9.2f} {base:>9.2f} {t / base:>7.3g}  {what}")
    print("\nratio = stage time / baseline time in this run (lower is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
