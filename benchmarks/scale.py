"""pk2d scale benchmark: clean and index of 1 M, 3 M and 10 M synthetic families, wall time and peak memory.

    .venv/bin/python benchmarks/scale.py                          # 1 M, 3 M, 10 M on a local Dask cluster of 2
    .venv/bin/python benchmarks/scale.py --families 1000000 --engines local,dask
    .venv/bin/python benchmarks/scale.py --families 1000000 --stages clean,index,compare

For each size the synthetic census (``pk2d synth --families N``: one pair of CSV files per kabupaten,
made one kabupaten at a time) is generated once into ``benchmarks/_data/scale_<N>/`` (git-ignored).
Each stage then runs in a fresh process (and, with ``dask``, on a fresh local cluster of ``--workers``
single-threaded workers), so every peak is that stage's own:

* ``clean``  vs its floor: reading the same CSV files with ``pyarrow.csv`` (every column as text);
* ``index``  (both catalogues) vs its floor: reading the clean stage's Parquet datasets with pyarrow;
* ``compare`` (with ``--stages ...,compare``; the default draws) vs its floor: reading the scores with pyarrow.

Printed per stage: seconds, the floor's seconds, their ratio, the driver's peak resident memory and
the largest worker's; then how time grows with N (the 10 M / 1 M ratio, linear = 10). Nothing here is
a test and no timing is asserted anywhere: the machines are shared and noisy, so compare ratios
measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
KEY = "scale-benchmark-key"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, raw: str, processed: str, engine: str, workers: int) -> dict:
    """One stage in this (fresh) process; its wall time and the peaks of this process and of each worker."""
    from pk2d import pipeline
    from pk2d.engine import open_engine

    os.environ.setdefault("PK2D_KEY", KEY)
    with open_engine(engine, workers=workers if engine == "dask" else None) as eng:
        t0 = time.perf_counter()
        if name == "clean":
            pipeline.clean(raw, processed, force=True, engine=eng)
        elif name == "index":
            pipeline.build_index(processed, force=True, engine=eng)
        else:
            pipeline.build_compare(processed, force=True, engine=eng)
        seconds = time.perf_counter() - t0
        workers_mb = []
        if eng.name == "dask":
            peak = lambda: __import__("resource").getrusage(0).ru_maxrss / 1024  # noqa: E731 (sent by value)
            workers_mb = sorted(eng.client.run(peak).values())
    return {"seconds": seconds, "driver_mb": _peak_mb(), "workers_mb": workers_mb}


def _in_fresh_process(name, raw, processed, engine, workers) -> dict:
    code = ("import json, sys; sys.path.insert(0, %r); from scale import stage; "
            "print('RESULT' + json.dumps(stage(*sys.argv[1:5], int(sys.argv[5]))))" % str(ROOT / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code, name, str(raw), str(processed), engine, str(workers)],
                         capture_output=True, text=True, env={**os.environ, "PK2D_KEY": KEY})
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
    if out.returncode or not line:
        raise SystemExit(f"{name} ({engine}) failed:\n{out.stderr[-3000:]}")
    return json.loads(line[-1][len("RESULT"):])


def _floor_csv(raw: Path) -> float:
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    for f in sorted(raw.glob("*.csv")):
        names = pacsv.read_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 26)).column_names
        pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, "string")))
    return time.perf_counter() - t0


def _floor_parquet(processed: Path, tables=("families", "members")) -> float:
    import pyarrow.parquet as pq

    from pk2d.store import open_run

    run = open_run(processed, check=False)
    t0 = time.perf_counter()
    for table in tables:
        for p in run.partitions(table):
            pq.read_table(p["path"])
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", type=int, action="append", help="repeatable (default 1 M, 3 M, 10 M)")
    ap.add_argument("--engines", default="dask", help="some of local,dask (default dask)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stages", default="clean,index", help="clean,index (default) or clean,index,compare")
    ap.add_argument("--keep", action="store_true", help="keep the processed folders")
    a = ap.parse_args(argv)
    with_compare = "compare" in a.stages.split(",")
    sizes = a.families or [1_000_000, 3_000_000, 10_000_000]
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    rows = []
    for n in sizes:
        raw = DATA / f"scale_{n}"
        if not (raw / ".complete").exists():
            from pk2d.synth import synthesize

            shutil.rmtree(raw, ignore_errors=True)
            t0 = time.perf_counter()
            synthesize(raw, families=n, rounds=1, seed=1)
            (raw / ".complete").write_text(f"{time.perf_counter() - t0:.1f} s\n")
        floor_clean = _floor_csv(raw)
        for engine in engines:
            processed = DATA / f"processed_{n}_{engine}"
            shutil.rmtree(processed, ignore_errors=True)
            c = _in_fresh_process("clean", raw, processed, engine, a.workers)
            floor_index = _floor_parquet(processed)
            i = _in_fresh_process("index", raw, processed, engine, a.workers)
            rows.append((n, engine, "clean", c, floor_clean))
            rows.append((n, engine, "index", i, floor_index))
            if with_compare:
                floor_compare = _floor_parquet(processed, ("scores",))
                rows.append((n, engine, "compare", _in_fresh_process("compare", raw, processed, engine, a.workers),
                             floor_compare))
            if not a.keep:
                shutil.rmtree(processed, ignore_errors=True)
            print(f"{n:,} {engine}: clean {c['seconds']:.1f} s, index {i['seconds']:.1f} s", file=sys.stderr,
                  flush=True)
    print(f"\nmachine: {os.cpu_count()} cores; workers: {a.workers} single-threaded (dask)\n")
    print("| families | engine | stage | seconds | floor s | ratio | driver peak GB | largest worker peak GB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for n, engine, name, r, floor in rows:
        worker = f"{max(r['workers_mb']) / 1024:.2f}" if r["workers_mb"] else "-"
        print(f"| {n:,} | {engine} | {name} | {r['seconds']:.1f} | {floor:.1f} | {r['seconds'] / floor:.2f} | "
              f"{r['driver_mb'] / 1024:.2f} | {worker} |")
    totals = {}
    for n, engine, name, r, _ in rows:
        totals.setdefault(engine, {}).setdefault(n, 0.0)
        if name != "compare":
            totals[engine][n] += r["seconds"]
    print()
    for engine, by_n in totals.items():
        line = ", ".join(f"{n:,}: {t:.1f} s" for n, t in by_n.items())
        first = min(by_n)
        growth = ", ".join(f"{n // first}x families -> {t / by_n[first]:.2f}x time" for n, t in by_n.items() if n != first)
        print(f"clean + index, {engine}: {line}" + (f"  ({growth})" if growth else ""))
    print("\nfloor: clean = pyarrow read of the same CSVs as text; index = pyarrow read of the clean Parquet parts; "
          "compare = pyarrow read of the scores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
