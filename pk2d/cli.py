"""Command line: thin wrappers over the stage functions; defaults from pk2d.defaults and pk2d.paths.

    pk2d synth [--seed N] [--out DIR] [--families N] [--rounds R] [--dirt X] [--tool kobo-xlsx|kobo-csv|odk-csv]
    pk2d clean [--raw DIR] [--processed DIR] [--force] [--new-key] [--mapping FILE.yaml] [ENGINE]
    pk2d index [--catalogue ikk|ibangga|PATH ...] [--processed DIR] [--design auto|census|sample] [--lonely-psu RULE]
               [--force] [ENGINE]
    pk2d compare [--processed DIR] [--raw DIR] [--n-boot N] [--n-runs N] [--seed N] [--force] [ENGINE]
    pk2d report (--village CODE ... | --all [--kabupaten CODE] | --province CODE) [--round R]
                [--format html,pdf,docx,xlsx]
                [--lang id|en] [--jobs N] [--force] [--retry-failed] [--pdf-engine auto|chromium|weasyprint] [ENGINE]
    pk2d interventions --village CODE [--round R] [--processed DIR]
    pk2d run   [--raw DIR] [--processed DIR] [--jobs N] [--mapping FILE.yaml] [ENGINE]
    pk2d map (--init EXPORT [--table keluarga|anggota] [--out FILE.yaml] [--force] | --check FILE.yaml)
    pk2d dictionary [--check]
    pk2d form [--lang id|en] [--regions CSV] --out FILE.xlsx

ENGINE: ``--engine local`` (default: in this process) or ``--engine dask`` with ``--workers N`` (a local
cluster) or ``--scheduler tcp://HOST:PORT`` (a cluster started with ``dask scheduler`` / ``dask worker``);
the per-kabupaten tasks run there and the outputs are the same (:mod:`pk2d.engine`).

Every stage is incremental: a stage whose inputs, settings and code are unchanged says so and
returns. Bad input ends with one clear paragraph on stderr and exit code 2, never a traceback
(:class:`pk2d.errors.Pk2dError`); so does a failure of the operating system a user can act on (a full or
read-only disk, no permission, a file where a folder should be: :func:`pk2d.errors.os_error`). An
unexpected internal error says so in one line and where its trace was written.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import defaults, paths
from .errors import Pk2dError


def _cmd_synth(a) -> int:
    from .synth import synthesize

    t0 = time.perf_counter()
    if a.tool:  # the sample as a field tool would have exported it
        from .synth_tools import export_folder

        with tempfile.TemporaryDirectory() as native:
            synthesize(native, seed=a.seed, families=a.families, dirt=a.dirt, rounds=a.rounds)
            files = export_folder(native, a.out, a.tool)
    else:
        files = synthesize(a.out, seed=a.seed, families=a.families, dirt=a.dirt, rounds=a.rounds).files
    for f in files:
        print(f)
    print(f"{len(files)} files written in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_clean(a) -> int:
    from .pipeline import clean

    t0 = time.perf_counter()
    res = clean(a.raw, a.processed, force=a.force, new_key=a.new_key, mapping=a.mapping, **_engine(a))
    print(res.summary())
    print(f"-> {res.run.folder('clean')} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_index(a) -> int:
    from .pipeline import build_index

    t0 = time.perf_counter()
    res = build_index(a.processed, catalogues=a.catalogue or defaults.CATALOGUES, design=a.design,
                      lonely_psu=a.lonely_psu, force=a.force, **_engine(a))
    areas = res.areas
    desa = areas[areas["level"] == "desa"]
    for (cat, rnd), g in desa.groupby(["catalogue", "round"]):
        print(f"\n{cat.upper()} putaran {rnd}: {len(g)} desa")
        for r in g.itertuples():
            ci = "sensus" if r.census else f"{r.ci_low:.2f}-{r.ci_high:.2f}"
            print(f"  {r.code}  {r.name:<22} n={r.n_families:>5}  {r.index:6.2f} ({ci})  {r.category_label}")
    state = "up to date, not recomputed" if res.up_to_date else "computed"
    print(f"\n{state}: scores, areas, area_components, indeks.xlsx -> {res.run.folder('index')} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_compare(a) -> int:
    from .pipeline import build_compare

    t0 = time.perf_counter()
    res = build_compare(a.processed, raw_dir=a.raw, n_boot=a.n_boot, n_runs=a.n_runs, seed=a.seed, force=a.force,
                        **_engine(a))
    lk = res.lokus
    state = "up to date, not recomputed" if res.up_to_date else "computed"
    kabs = res.table("league")["kabupaten"].nunique()
    print(f"{state}: {kabs} kabupaten, desa lokus {', '.join(lk['kode_desa']) or '-'}; "
          f"league, gaps, plans, change, DiD, audit, report tables -> {res.run.folder('compare')} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_report(a) -> int:
    from .report.batch import build_reports, reports_dir
    from .render.batch import BatchInterrupted

    formats = tuple(f.strip().lower() for f in a.format.split(",") if f.strip())
    out = a.out or reports_dir(a.lang)
    try:
        summary = build_reports(a.processed, out, villages=a.village, kabupaten=a.kabupaten, round=a.round,
                                catalogue=a.catalogue, lang=a.lang, formats=formats, jobs=a.jobs, force=a.force,
                                retry_failed=a.retry_failed, all_units=a.all, province=a.province,
                                district=None if not a.no_district else False, pdf_engine=a.pdf_engine,
                                **_engine(a))
    except BatchInterrupted as exc:
        print(exc.summary.text(all_rows=False))
        raise
    print(summary.text(all_rows=False))
    print(f"index: {Path(out) / 'index.html'}")
    return 0 if summary.ok else 1


def _cmd_interventions(a) -> int:
    from .interventions import export_interventions

    path = export_interventions(a.village, round=a.round, catalogue=a.catalogue, processed_dir=a.processed,
                                lang=a.lang)
    print(f"{path}\n(RAHASIA / confidential: for the village team only, never to be published)")
    return 0


def _cmd_run(a) -> int:
    from .pipeline import run

    run(raw_dir=a.raw, processed_dir=a.processed, jobs=a.jobs, mapping=a.mapping, **_engine(a))
    print(f"\nreports: {paths.REPORTS_DIR / 'index.html'}")
    return 0


def _cmd_map(a) -> int:
    from .mapping import load_mapping

    if a.check:
        m = load_mapping(a.check)
        print(f"{m.path}: valid (sha256 {m.sha256[:12]}){': ' + m.description if m.description else ''}")
        for t, tm in m.tables.items():
            files = ", ".join(m.files.get(t, ("*",)))
            print(f"  {t} (files {files}): {len(tm.columns)} columns renamed, {len(tm.recode)} recoded, "
                  f"{len(tm.split)} split, {len(tm.join)} joined, {len(tm.constants)} constants")
        if m.formats:
            print(f"  formats: {', '.join(f'{k} {v}' for k, v in m.formats.items())}")
        return 0
    from .errors import MappingError
    from .io import write_text
    from .mapping_read import init_template

    text, table = init_template(a.init, a.table)
    out = a.out or Path(f"{Path(a.init).stem}.mapping.yaml")
    if out.exists() and not a.force:
        raise MappingError(out, "the file exists already; nothing was written.", "pass --force to replace it, or "
                           "another --out.")
    write_text(out, text)
    load_mapping(out)  # the template is valid as written
    print(f"{out} (table {table}): fill in each ???, then `pk2d map --check {out}` and "
          f"`pk2d clean --mapping {out}`")
    return 0


def _cmd_dictionary(a) -> int:
    from .dictionary import render_dictionary

    text = render_dictionary()
    target = paths.RAW_DIR / "README.md"
    if a.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is out of date: run `pk2d dictionary`.", file=sys.stderr)
            return 1
        return 0
    from .io import write_text

    write_text(target, text)
    print(target)
    return 0


def _cmd_form(a) -> int:
    from .form import build_form, summary, write_form

    path = write_form(a.out, lang=a.lang, regions=a.regions)
    print(f"{path}\n{summary(build_form(a.lang, a.regions))}")
    return 0


def _engine_options(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("engine", "where the per-kabupaten tasks run (the numbers are the same either way)")
    g.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local: in this process (default, a district's data); dask: on a Dask cluster")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="with --engine dask: start a local cluster of N worker processes (default: one per core)")
    g.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="with --engine dask: join the cluster of this scheduler (`dask scheduler`, `dask worker`)")


def _engine(a) -> dict:
    from .engine import check_options

    check_options(a.engine, a.workers, a.scheduler)
    return {"engine": a.engine, "workers": a.workers, "scheduler": a.scheduler}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pk2d", description="PK2D family-quality pipeline (IKK, iBangga).")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic survey export (deterministic given --seed)")
    s.add_argument("--seed", type=int, default=defaults.SEED)
    s.add_argument("--out", type=Path, default=paths.RAW_DIR)
    s.add_argument("--families", "--scale", type=int, default=None,
                   help="scale mode: number of families (e.g. 90000, 1000000, 10000000), made and written one "
                        "kabupaten at a time (one families/members pair per kabupaten and round; memory follows "
                        "the largest kabupaten); default: the sample villages")
    s.add_argument("--dirt", type=float, default=1.0, help="multiplier of the dirt rates (0 = clean files)")
    s.add_argument("--rounds", type=int, default=None, help="survey rounds of each kabupaten (default: all of the villages file, 1 in scale mode)")
    s.add_argument("--tool", choices=["kobo-xlsx", "kobo-csv", "odk-csv"], default=None,
                   help="write each round as that field tool's export of the pk2d form (default: native files)")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("clean", help="validate, clean and pseudonymise the raw exports (stage 1)")
    s.add_argument("--raw", type=Path, default=paths.RAW_DIR)
    s.add_argument("--processed", "--out", type=Path, default=paths.PROCESSED_DIR)
    s.add_argument("--force", action="store_true", help="recompute even when up to date")
    s.add_argument("--new-key", action="store_true",
                   help="start over with a new pseudonymisation key: every id_keluarga/id_anggota changes and "
                        "earlier exports no longer link (without it a changed key is refused)")
    s.add_argument("--mapping", type=Path, default=None, metavar="FILE.yaml",
                   help="a mapping of another export's columns and answers to the contract (pk2d map --init)")
    _engine_options(s)
    s.set_defaults(func=_cmd_clean)

    s = sub.add_parser("index", help="family scores and area estimates for each catalogue (stage 2)")
    s.add_argument("--catalogue", action="append", help="ikk, ibangga or a YAML path (repeatable)")
    s.add_argument("--processed", type=Path, default=paths.PROCESSED_DIR)
    s.add_argument("--design", choices=["auto", "census", "sample"], default="auto",
                   help="auto: a census unless families carry weights (bobot)")
    s.add_argument("--lonely-psu", choices=["fail", "remove", "adjust", "average", "certainty"], default="fail",
                   help="a sample stratum with one PSU: R's survey.lonely.psu rules (default: fail)")
    s.add_argument("--force", action="store_true", help="recompute even when up to date")
    _engine_options(s)
    s.set_defaults(func=_cmd_index)

    s = sub.add_parser("compare", help="league tables, plans, change, DiD, audit and report tables (stage 3)")
    s.add_argument("--processed", type=Path, default=paths.PROCESSED_DIR)
    s.add_argument("--raw", type=Path, default=None, help="folder of the desa lokus list (default: the clean stage's)")
    s.add_argument("--n-boot", type=int, default=defaults.N_BOOT, help=f"bootstrap replicates ({defaults.N_BOOT})")
    s.add_argument("--n-runs", type=int, default=defaults.N_RUNS, help=f"sensitivity simulations ({defaults.N_RUNS})")
    s.add_argument("--seed", type=int, default=defaults.SEED)
    s.add_argument("--force", action="store_true", help="recompute even when up to date")
    _engine_options(s)
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("report", help="render village, district and province reports (HTML, PDF, DOCX, XLSX) and "
                                      "the index page")
    who = s.add_mutually_exclusive_group()
    who.add_argument("--village", action="append", metavar="CODE",
                     help="10-digit village code, e.g. 63.02.06.2012 (repeatable)")
    who.add_argument("--all", action="store_true",
                     help="every surveyed village (of --kabupaten when given), its districts and province")
    s.add_argument("--province", metavar="CODE",
                   help="the province report, e.g. 63 (Kalimantan Selatan); with --village also those villages")
    s.add_argument("--kabupaten", metavar="CODE", help="with --all: only this kabupaten, e.g. 63.02")
    s.add_argument("--round", type=int, default=defaults.ROUND, help="survey round (default: the latest)")
    s.add_argument("--catalogue", default=defaults.REPORT_CATALOGUE, help="ikk, ibangga or a catalogue YAML path")
    s.add_argument("--format", default=",".join(defaults.FORMATS),
                   help="some of html,pdf,docx,xlsx (default: all; xlsx = the agencies' workbook of a village)")
    s.add_argument("--lang", choices=["id", "en"], default=defaults.LANG)
    s.add_argument("--jobs", type=int, default=defaults.JOBS, help=f"reports rendered in parallel ({defaults.JOBS})")
    s.add_argument("--force", action="store_true", help="render even reports whose inputs did not change")
    s.add_argument("--retry-failed", action="store_true", help="render only the reports that failed last time")
    s.add_argument("--no-district", action="store_true", help="with --all: no district (kabupaten) report")
    s.add_argument("--pdf-engine", choices=["auto", "chromium", "weasyprint"], default="auto",
                   help="auto: headless Chromium where installed, else WeasyPrint")
    s.add_argument("--processed", type=Path, default=paths.PROCESSED_DIR)
    s.add_argument("--out", type=Path, default=None, help="default: reports/ (reports/en/ with --lang en)")
    _engine_options(s)
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("interventions", help="a village's cadre lists (pseudonymous family ids per RT) as XLSX, "
                                             "into data/processed/exports only")
    s.add_argument("--village", required=True, metavar="CODE", help="10-digit village code, e.g. 63.02.06.2012")
    s.add_argument("--round", type=int, default=defaults.ROUND, help="survey round (default: the village's latest)")
    s.add_argument("--catalogue", default=defaults.REPORT_CATALOGUE, help="ikk, ibangga or a catalogue YAML path")
    s.add_argument("--lang", choices=["id", "en"], default=defaults.LANG)
    s.add_argument("--processed", type=Path, default=paths.PROCESSED_DIR)
    s.set_defaults(func=_cmd_interventions)

    s = sub.add_parser("run", help="the whole pipeline: stage notebooks with papermill, then all reports")
    s.add_argument("--raw", type=Path, default=paths.RAW_DIR)
    s.add_argument("--processed", type=Path, default=paths.PROCESSED_DIR)
    s.add_argument("--jobs", type=int, default=defaults.JOBS, help=f"reports rendered in parallel ({defaults.JOBS})")
    s.add_argument("--mapping", type=Path, default=None, metavar="FILE.yaml",
                   help="a mapping of another export's columns and answers to the contract (pk2d map --init)")
    _engine_options(s)
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("map", help="a mapping file for another system's export: write a template, or check one")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--init", type=Path, metavar="EXPORT", help="write a commented template from this export's header")
    what.add_argument("--check", type=Path, metavar="FILE.yaml", help="validate a mapping file")
    s.add_argument("--table", choices=["keluarga", "anggota"], default=None,
                   help="with --init: the table the export holds (default: from its name or header)")
    s.add_argument("--out", type=Path, default=None, help="with --init: default EXPORT_NAME.mapping.yaml here")
    s.add_argument("--force", action="store_true", help="with --init: replace an existing --out")
    s.set_defaults(func=_cmd_map)

    s = sub.add_parser("dictionary", help="write data/raw/README.md from pk2d/contract.yaml")
    s.add_argument("--check", action="store_true", help="only check that it is up to date")
    s.set_defaults(func=_cmd_dictionary)

    s = sub.add_parser("form", help="write the XLSForm (ODK Collect / KoboToolbox) of the raw-data contract")
    s.add_argument("--lang", choices=["id", "en"], default=defaults.LANG, help="the form's default language")
    s.add_argument("--regions", type=Path, default=None, metavar="CSV",
                   help="the team's region list (kode,tingkat,nama,kode_induk, e.g. data/raw/SINTETIS_wilayah.csv): "
                        "kecamatan and desa become lists to choose from")
    s.add_argument("--out", type=Path, required=True, metavar="FILE.xlsx")
    s.set_defaults(func=_cmd_form)
    return p


def _trace_file(command: str) -> Path | None:
    """Write the current exception's trace to a file of its own (None when even that fails)."""
    trace = traceback.format_exc()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (Path(tempfile.gettempdir()) / "pk2d-errors", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{stamp}-{command}-", suffix=".txt", dir=folder)
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(trace)
            return Path(name)
        except OSError:  # not writable for this user, or the disk is full
            continue
    return None


def _output_folder(args) -> Path | None:
    """The folder a command writes, to name when the disk fails without naming a file."""
    if args.command == "report" and args.out is None:
        from .report.batch import reports_dir

        return reports_dir(args.lang)
    for name in ("out", "processed"):
        if getattr(args, name, None) is not None:
            return Path(getattr(args, name))
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Pk2dError as exc:
        print(f"pk2d {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"pk2d {args.command}: interrupted; nothing half-written was kept. Run it again to continue.",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`pk2d clean | head -1`): not a bug, nothing to say
        import os

        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        from .errors import os_error

        err = os_error(exc, folder=_output_folder(args), what="The output folder")
        if err is None:
            return _internal_error(args.command, exc)
        print(f"pk2d {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as exc:  # a bug, not bad input: one line, the trace in a file
        return _internal_error(args.command, exc)


def _internal_error(command: str, exc: BaseException) -> int:
    where = _trace_file(command)
    told = f"The full trace is in {where}." if where else "The full trace could not be written to a file."
    print(f"pk2d {command}: internal error ({type(exc).__name__}); this is a bug in pk2d, not in your data. {told}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
