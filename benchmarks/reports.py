"""Report batch benchmark: a whole kabupaten of 200 villages, against the plain serial loop.

    .venv/bin/python benchmarks/reports.py                 # pk2d synth --families 90000 (200 villages)
    .venv/bin/python benchmarks/reports.py --families 20000 --sample 3

Steps (each printed with its seconds): synthesise, clean, index, compare; the plain serial
``papermill`` + ``nbconvert`` loop (benchmarks/baseline.py) timed on ``--sample`` village reports and
scaled per report to the whole batch; pk2d's batch of every village, district and province report in
every format (HTML, PDF, DOCX, the villages' XLSX), then HTML + PDF, then HTML alone (each into an
empty folder); a no-change HTML + PDF rebuild through the CLI; and new data for
one kabupaten of a two-kabupaten set, which must re-render that kabupaten's reports only. Prints the
per-report decomposition (kernel, execute, html, pdf, docx, xlsx), the peak memory and the ratios against the
baseline measured in the same run. Nothing here is a test: no timing is asserted anywhere.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
sys.path.insert(0, str(ROOT))


def _stages(raw: Path, processed: Path, families: int, *, dirt: float = 1.0) -> dict:
    from pk2d.pipeline import build_compare, build_index, clean
    from pk2d.synth import synthesize

    t = {}
    t0 = time.perf_counter()
    synthesize(raw, families=families, rounds=1, seed=1, dirt=dirt)
    t["synth"] = time.perf_counter() - t0
    for name, fn in (("clean", lambda: clean(raw, processed, key=b"bench")),
                     ("index", lambda: build_index(processed)),
                     ("compare", lambda: build_compare(processed))):
        t0 = time.perf_counter()
        fn()
        t[name] = time.perf_counter() - t0
    return t


def _pages(out: Path) -> tuple[int, int]:
    from pk2d.render.pdf import count_pages

    pages = [count_pages(p.read_bytes()) for p in (out / "desa").glob("*.pdf")]
    return (max(pages), round(sum(pages) / len(pages))) if pages else (0, 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", type=int, default=90_000)
    ap.add_argument("--sample", type=int, default=5, help="village reports timed in the plain serial loop")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-partial", action="store_true", help="no two-kabupaten partial rebuild")
    ap.add_argument("--only-partial", action="store_true", help="only the two-kabupaten partial rebuild")
    a = ap.parse_args(argv)

    from benchmarks.baseline import plain_serial
    from pk2d.report import build_reports
    from pk2d.report.batch import report_units
    from pk2d.store import open_run

    work = Path(tempfile.mkdtemp(prefix="pk2d-bench-rep-"))
    rows, notes = [], []
    if a.only_partial:
        try:
            _partial(work, a.jobs, notes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        raw, processed = DATA / f"raw_{a.families}", work / "processed"
        st = _stages(raw, processed, a.families)
        print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in st.items()), flush=True)
        run = open_run(processed)
        units = report_units(run, villages=None, district=True)
        n = len(units)
        n_desa = sum(u.kind == "desa" for u in units)
        print(f"{n} reports: {n_desa} villages, {n - n_desa} district(s)", flush=True)

        sample = [u for u in units if u.kind == "desa"][:a.sample]
        base = plain_serial(sample, work / "plain")
        per = base["seconds"] / len(sample)
        t_plain = per * n
        print(f"plain serial loop: {len(sample)} reports in {base['seconds']:.1f} s, {per:.2f} s each, "
              f"scaled to {n}: {t_plain:.0f} s", flush=True)

        for formats in (("html", "pdf", "docx", "xlsx"), ("html", "pdf"), ("html",)):
            out = work / "-".join(formats)
            t0 = time.perf_counter()
            s = build_reports(processed, out, all_units=True, formats=formats, jobs=a.jobs, progress=False)
            wall = time.perf_counter() - t0
            assert s.ok, s.text()
            rows.append((f"all reports, {'+'.join(formats)}", n, wall, t_plain))
            mean = s.mean_timings()
            notes.append(f"{'+'.join(formats)}: per report " + ", ".join(
                f"{k} {mean[k]:.2f} s" for k in ("kernel_start", "execute", "html", "pdf", "docx", "xlsx", "total")
                if k in mean and (k in formats or k not in ("pdf", "docx", "xlsx")))
                + f"; peak memory {s.peak_memory_mb:,.0f} MB; pdf engine {s.pdf_engine or '-'}")
            if "pdf" in formats:
                most, avg = _pages(out)
                notes.append(f"village report pages: at most {most}, mean {avg} (district: "
                             f"{_pages_of(out / 'kabupaten')})")
            print(rows[-1], notes[-1], flush=True)

        out = work / "html-pdf"
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pk2d.cli", "report", "--all", "--processed", str(processed),
                               "--out", str(out), "--format", "html,pdf"], capture_output=True, text=True)
        rows.append(("no-change rebuild (pk2d report --all)", n, time.perf_counter() - t0, t_plain))
        last = [ln for ln in done.stdout.splitlines() if "rendered," in ln]
        notes.append(f"no-change rebuild: {last[0] if last else done.stdout[-200:]}")

        if not a.skip_partial:
            _partial(work, a.jobs, notes)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'batch':<40} {'n':>5} {'seconds':>9} {'baseline':>9} {'speed-up':>9}")
    for what, k, t, b in rows:
        print(f"{what:<40} {k:>5} {t:>9.1f} {b:>9.1f} {b / t:>8.1f}x")
    print("\nbaseline = the plain serial papermill + nbconvert loop (HTML only), timed on a sample in this run\n"
          "and scaled per report; speed-up = baseline / batch")
    for line in notes:
        print(line)
    return 0


def _pages_of(folder: Path) -> str:
    from pk2d.render.pdf import count_pages

    return ", ".join(str(count_pages(p.read_bytes())) for p in folder.glob("*.pdf")) or "-"


def _split_by_kabupaten(raw: Path) -> None:
    """One export pair per kabupaten, as districts send them (the synthetic set writes one pair)."""
    for fam_file in sorted(raw.glob("*keluarga*.csv")):
        mem_file = fam_file.with_name(fam_file.name.replace("keluarga", "anggota"))
        fam = pd.read_csv(fam_file, dtype=str, keep_default_na=False)
        mem = pd.read_csv(mem_file, dtype=str, keep_default_na=False)
        for kab, f in fam.groupby("kode_kabupaten"):
            tag = "k" + kab.replace(".", "")
            f.to_csv(fam_file.with_name(fam_file.name.replace("keluarga", f"{tag}_keluarga")), index=False)
            mem[mem["no_kk"].isin(f["no_kk"])].to_csv(
                mem_file.with_name(mem_file.name.replace("anggota", f"{tag}_anggota")), index=False)
        fam_file.unlink()
        mem_file.unlink()


def _partial(work: Path, jobs: int, notes: list) -> None:
    """Two kabupaten, each with its own export files; new data for one re-renders its reports only."""
    from pk2d.pipeline import build_compare, build_index, clean
    from pk2d.report import build_reports
    from pk2d.synth import synthesize

    raw, processed, out = DATA / "raw_95000_two", work / "two", work / "two-reports"
    shutil.rmtree(raw, ignore_errors=True)
    synthesize(raw, families=95_000, rounds=1, seed=2, dirt=0.0)
    _split_by_kabupaten(raw)
    for fn in (lambda: clean(raw, processed, key=b"bench"), lambda: build_index(processed),
               lambda: build_compare(processed)):
        fn()
    first = build_reports(processed, out, all_units=True, formats=("html",), jobs=jobs, progress=False)
    fam_file = sorted(raw.glob("*_keluarga.csv"))[-1]  # the second kabupaten's families
    mem_file = fam_file.with_name(fam_file.name.replace("keluarga", "anggota"))
    fam = pd.read_csv(fam_file, dtype=str, keep_default_na=False)
    mem = pd.read_csv(mem_file, dtype=str, keep_default_na=False)
    kab = fam["kode_kabupaten"].iloc[0]
    drop = fam["no_kk"].head(30)  # thirty families fewer in one kabupaten
    fam[~fam["no_kk"].isin(drop)].to_csv(fam_file, index=False)
    mem[~mem["no_kk"].isin(drop)].to_csv(mem_file, index=False)
    t0 = time.perf_counter()
    for fn in (lambda: clean(raw, processed, key=b"bench"), lambda: build_index(processed),
               lambda: build_compare(processed)):
        fn()
    t_stages = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build_reports(processed, out, all_units=True, formats=("html",), jobs=jobs, progress=False)
    wall = time.perf_counter() - t0
    redone = sorted({r.unit.code[:5] for r in again.rendered})
    notes.append(f"new data for kabupaten {kab} (30 of its {len(fam)} families removed; clean + index + compare "
                 f"again {t_stages:.0f} s): {len(again.rendered)} of {len(again.results)} reports re-rendered "
                 f"(kabupaten {', '.join(redone) or '-'}), {len(again.skipped)} skipped, in {wall:.1f} s "
                 f"(the first full batch: {first.seconds:.0f} s)")
    print(notes[-1], flush=True)


if __name__ == "__main__":
    sys.exit(main())
