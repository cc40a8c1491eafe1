"""Render many reports: kernels started ahead, a warm PDF printer, incremental, safe to interrupt.

:func:`render_units` executes each :class:`~pk2d.render.unit.ReportUnit`'s
notebook with papermill in a fresh kernel taken from a
:class:`~pk2d.kernel.KernelPool`, converts it to one self-contained HTML page
(:mod:`pk2d.render.publish`) and prints that page to PDF
(:mod:`pk2d.render.pdf`), writes the Word document from the same executed
notebook (:mod:`pk2d.render.docx`) and, for a village, the agencies' workbook
(:mod:`pk2d.report.workbook`), ``jobs`` reports at a time::

    out_dir/desa/63.02.06.2012-pondok-labu.html   (.pdf, .docx, -rencana-dinas.xlsx)
    out_dir/_executed/desa/63.02.06.2012-pondok-labu.ipynb
    out_dir/_manifest.json                         (what was rendered from which key)

A unit whose key (the digest of the data it shows, its input files, template,
parameters, the pk2d version, the page shell and the report code) is
unchanged since its last render is skipped, format by format. One failing
unit never stops the others. The batch holds ``out_dir/.lock`` (a second batch
on the same folder stops at once with a clear message), sweeps temporary files
a killed batch left, records every finished unit as it finishes, and on
SIGINT/SIGTERM stops its kernels, records what finished and returns a summary
marked ``interrupted``: the next run renders exactly what is missing.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from .. import __version__, paths
from ..errors import OutputFolderError, Pk2dError, ReportError
from ..io import ensure_writable_dir, sha256_file, write_json, write_text
from ..fmt import printable
from ..execute import ExecutionFailed, run_notebook
from ..store import PRESENTATION_CODE, folder_lock
from .docx import notebook_to_docx
from .publish import notebook_to_html, shell_hash
from .results import RenderSummary, UnitResult
from .unit import FORMATS, ReportUnit, formats_of, unit_paths

MANIFEST_NAME = "_manifest.json"
MANIFEST_FORMAT = 2


class BatchInterrupted(Pk2dError):
    """The batch was stopped (Ctrl-C, SIGTERM); what finished is recorded. Carries the summary."""

    exit_code = 130

    def __init__(self, summary: RenderSummary):
        self.summary = summary
        done = len(summary.rendered)
        super().__init__(f"interrupted after {done} report(s); every finished report is recorded.",
                         fix="run the same command again: it renders only what is missing.")


# --- keys ---------------------------------------------------------------------------------------
def presentation_hash() -> str:
    """sha256 of the code and templates that decide how a report looks (not what it says)."""
    h = hashlib.sha256()
    for rel in sorted(PRESENTATION_CODE):
        p = paths.PACKAGE_DIR / rel
        if p.is_file() and rel not in ("cli.py", "dictionary.py") and not rel.startswith("synth"):
            h.update(rel.encode())
            h.update(p.read_bytes())
    for p in sorted((paths.PACKAGE_DIR / "templates").rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    agencies = paths.CATALOGUE_DIR / "agencies.yaml"
    h.update(agencies.read_bytes())
    return h.hexdigest()


def unit_key(unit: ReportUnit, *, code: str | None = None) -> str:
    """sha256 over the unit's data digest, its input files, template, keyed parameters, the pk2d
    version, the page shell and the report code: equal keys mean an identical report."""
    missing = [str(p) for p in (unit.template, *unit.inputs) if not Path(p).is_file()]
    if missing:
        err = ReportError(unit.label, f"missing file(s): {', '.join(missing)}",
                          fix="Run the earlier pipeline stages first (`pk2d run`).")
        err.problem = f"missing file(s): {', '.join(missing)}"
        raise err
    payload = {"digest": unit.digest, "inputs": [sha256_file(p) for p in unit.inputs],
               "template": sha256_file(unit.template), "parameters": unit.keyed_parameters,
               "version": __version__, "shell": shell_hash(), "code": code or presentation_hash()}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- manifest ------------------------------------------------------------------------------------
def load_manifest(out_dir: str | Path = paths.REPORTS_DIR) -> dict:
    """``out_dir/_manifest.json`` (``{"units": {}}`` when missing, unreadable or of an older format)."""
    p = Path(out_dir) / MANIFEST_NAME
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT and isinstance(data.get("units"), dict):
            return data
    return {"format": MANIFEST_FORMAT, "units": {}}


def _rel(path: Path | None, out_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _remove_inside(out_dir: Path, rel: str | None) -> None:
    """Delete ``out_dir/rel`` only if it really lies inside ``out_dir`` (the manifest is data, not trusted)."""
    if not rel:
        return
    target = (out_dir / rel).resolve()
    try:
        target.relative_to(out_dir.resolve())
    except ValueError:
        return
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        target.unlink()


def sweep_temporary(out_dir: str | Path) -> int:
    """Remove the temporary files (``.NAME.XXXX.tmp``) a killed batch left in ``out_dir``."""
    n = 0
    for p in Path(out_dir).rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def _check_writable(out_dir: Path) -> None:
    """Before anything renders: ``out_dir`` is a folder (created when missing) this process can write."""
    try:
        ensure_writable_dir(out_dir, "The reports folder (--out)")
    except OutputFolderError as exc:  # bad environment, not a failed report: exit code 2 like every such error
        raise ReportError("batch", f"the reports folder {exc.path} cannot be written ({exc.problem})",
                          fix=exc.fix, exit_code=2) from None


# --- memory ----------------------------------------------------------------------------------------
class _MemorySampler:
    """Peak resident memory of this process and all its descendants (Linux /proc; elsewhere None)."""

    def __init__(self, every: float = 2.0):
        self.peak_kb = 0
        self._stop = threading.Event()
        self._ok = Path("/proc/self/status").is_file()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True, name="pk2d-memory")
        if self._ok:
            self._thread.start()

    def _loop(self, every):
        while not self._stop.wait(every):
            with contextlib.suppress(Exception):
                self.peak_kb = max(self.peak_kb, self.sample())

    @staticmethod
    def sample() -> int:
        """kB of memory held by this process tree: proportional set sizes (shared pages of forked kernels
        counted once), resident sizes where the kernel gives no PSS."""
        total, todo, seen = 0, [os.getpid()], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += _pss_kb(pid)
            todo += _children(pid)
        return total

    def stop(self) -> float | None:
        self._stop.set()
        if self._ok:
            self._thread.join(timeout=2)
            with contextlib.suppress(Exception):
                self.peak_kb = max(self.peak_kb, self.sample())
        return self.peak_kb / 1024 if self._ok and self.peak_kb else None


def _children(pid: int) -> list[int]:
    """Child pids (``/proc/PID/task/*/children``; a scan of /proc where the kernel lacks that file)."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    try:
        for t in tasks.iterdir():
            found += [int(x) for x in (t / "children").read_text().split()]
        return found
    except FileNotFoundError:
        pass
    except OSError:
        return found
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(d.name))
    return found


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


# --- one unit ---------------------------------------------------------------------------------------
def _render_one(unit: ReportUnit, out_dir: Path, *, formats: Sequence[str], key: str, pool, printer,
                kernel_name: str, timeout: int | None, retries: int) -> UnitResult:
    """Render one unit. Never raises for a report problem: failures come back as a result."""
    import nbformat

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    p = unit_paths(unit, out_dir)
    attempts, pages, phase = 0, None, "papermill"
    try:
        params = {**unit.parameters, "png_figures": True} if "docx" in formats else unit.parameters
        try:
            nb, attempts = run_notebook(unit.template, params, pool=pool, kernel_name=kernel_name,
                                        timeout=timeout, retries=retries, timings=timings)
        except ExecutionFailed as exc:
            wrote = False
            if getattr(exc, "nb", None) is not None:
                with contextlib.suppress(Exception):
                    write_text(p["executed"], nbformat.writes(exc.nb))
                    wrote = True
            timings["total"] = time.perf_counter() - t_start
            return UnitResult(unit, "failed", executed=p["executed"] if wrote else None, error=exc.problem,
                              cell_index=exc.cell_index, timings=timings, attempts=exc.attempts or attempts)
        write_text(p["executed"], nbformat.writes(nb))
        phase = "html conversion"
        t = time.perf_counter()
        page = notebook_to_html(nb, unit, key=key)
        timings["html"] = time.perf_counter() - t
        if "pdf" in formats:
            phase = "pdf printing"
            t = time.perf_counter()
            pages = printer.print(page, p["pdf"])
            timings["pdf"] = time.perf_counter() - t
        if "html" in formats:
            write_text(p["html"], page)
        if "docx" in formats:
            phase = "docx writing"
            t = time.perf_counter()
            notebook_to_docx(nb, unit, p["docx"], key=key)
            timings["docx"] = time.perf_counter() - t
        if "xlsx" in formats:
            phase = "xlsx writing"
            t = time.perf_counter()
            write_workbook(unit, p["xlsx"], key=key)
            timings["xlsx"] = time.perf_counter() - t
    except ReportError as exc:  # e.g. the page would not be self-contained
        timings["total"] = time.perf_counter() - t_start
        return UnitResult(unit, "failed", executed=p["executed"], error=getattr(exc, "problem", exc.message),
                          timings=timings, attempts=attempts)
    except Exception as exc:  # a converter or the printer failed: name the phase, no traceback
        timings["total"] = time.perf_counter() - t_start
        return UnitResult(unit, "failed", executed=p["executed"] if phase != "papermill" else None,
                          error=printable(f"{phase} failed: {type(exc).__name__}: {exc}", 300), timings=timings,
                          attempts=attempts)
    timings["total"] = time.perf_counter() - t_start
    return UnitResult(unit, "rendered", outputs=tuple(p[f] for f in FORMATS if f in formats),
                      executed=p["executed"], timings=timings, attempts=attempts, pages=pages)


def write_workbook(unit: ReportUnit, path: Path, *, key: str = "") -> Path:
    """The agencies' workbook of a village unit, from the run record its parameters name."""
    from ..report.workbook import unit_workbook

    return unit_workbook(unit.parameters, path, key=key)


@contextlib.contextmanager
def _signals_raise() -> Iterable[None]:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt in the main thread while the batch runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def render_units(units: Iterable[ReportUnit], *, out_dir: str | Path = paths.REPORTS_DIR,
                 formats: Sequence[str] = ("html", "pdf"), jobs: int = 2, force: bool = False,
                 retry_failed: bool = False, kernel_name: str = "python3", progress: bool = True,
                 timeout: int | None = 600, retries: int = 2, pdf_engine: str = "auto",
                 kernel_mode: str = "auto", on_done=None, preload: tuple | None = None, engine=None) -> RenderSummary:
    """Render many reports, ``jobs`` at a time; skip unchanged ones; never stop at one failure.

    * ``formats``: any of :data:`~pk2d.render.unit.FORMATS` (``html``, ``pdf``, ``docx``, ``xlsx``); the
      PDF is printed from the HTML page, the Word document made from the same executed notebook, the
      agencies' workbook (villages only) from the same run record. A unit gets those of its kind.
    * ``force``: render even unchanged units. ``retry_failed``: only the units whose last render failed.
    * ``timeout``: seconds allowed per cell; ``retries``: extra attempts when a kernel fails to *start*.
    * ``pdf_engine``: ``auto`` (Chromium where installed, else WeasyPrint), ``chromium`` or ``weasyprint``.

    Raises :class:`BatchInterrupted` (with the summary) on Ctrl-C or SIGTERM, after recording every
    finished unit and stopping every kernel; :class:`~pk2d.errors.RunLockedError` when another batch
    is writing ``out_dir``. ``on_done(summary)`` runs while the folder is still locked (also when the
    batch was interrupted), e.g. to write the index page. ``preload``: ``("module:function", arg, ...)``
    run once in the kernel zygote before the first kernel is forked (data every report reads).
    ``engine``: an open Dask engine (:mod:`pk2d.engine`) renders on its workers instead, each with its own
    kernel and PDF printer (the output folder must be one every worker sees); the manifest is written here.
    """
    t_batch = time.perf_counter()
    out_dir = Path(out_dir)
    units = list(units)
    requested = (formats,) if isinstance(formats, str) else tuple(formats)
    formats = tuple(f for f in FORMATS if f in requested)
    if not formats or set(requested) - set(FORMATS):
        raise ReportError("batch", f"formats must be some of {FORMATS}, not {requested}",
                          fix=f"Use some of {', '.join(FORMATS)}, e.g. html,pdf.")
    seen: dict[str, ReportUnit] = {}
    for u in units:
        if u.id in seen:
            raise ReportError(u.label, f"listed twice (also as {seen[u.id].label!r})",
                              fix="Give every report unit a distinct kind and code.")
        seen[u.id] = u
    jobs = max(1, int(jobs))
    _check_writable(out_dir)
    with folder_lock(out_dir, "A report batch"):
        sweep_temporary(out_dir)
        try:
            summary = _batch(units, out_dir, formats, jobs, force, retry_failed, kernel_name, progress, timeout,
                             retries, pdf_engine, kernel_mode, t_batch, preload, engine)
        except BatchInterrupted as exc:
            if on_done is not None:
                on_done(exc.summary)
            raise
        if on_done is not None:
            on_done(summary)
        return summary


def _batch(units, out_dir, formats, jobs, force, retry_failed, kernel_name, progress, timeout, retries,
           pdf_engine, kernel_mode, t_batch, preload=None, engine=None) -> RenderSummary:
    manifest = load_manifest(out_dir)
    entries: dict = manifest["units"]
    results: dict[str, UnitResult] = {}
    todo: list[tuple[ReportUnit, str, tuple]] = []
    code = presentation_hash()

    def finished(unit: ReportUnit, key: str, res: UnitResult, made: tuple = ()):
        """Record one result; the manifest is rewritten atomically after every unit."""
        results[unit.id] = res
        old = entries.get(unit.id, {})
        outputs = dict(old.get("outputs") or {})
        keys = dict(old.get("formats") or {})
        if res.status == "rendered":
            p = unit_paths(unit, out_dir)
            for f in made:
                if outputs.get(f) and outputs[f] != _rel(p[f], out_dir):  # renamed: no orphan left behind
                    _remove_inside(out_dir, outputs[f])
                outputs[f], keys[f] = _rel(p[f], out_dir), key
            for f in FORMATS:  # another format of an older key would contradict the new report
                if f not in made and keys.get(f) not in (None, key):
                    _remove_inside(out_dir, outputs.pop(f, None))
                    keys.pop(f, None)
            if old.get("executed") and old["executed"] != _rel(res.executed, out_dir):
                _remove_inside(out_dir, old["executed"])
        entries[unit.id] = {
            "kind": unit.kind, "code": unit.code, "name": unit.name,
            "key": key if res.status == "rendered" else old.get("key"), "status": res.status,
            "error": res.error, "cell_index": res.cell_index, "outputs": outputs, "formats": keys,
            "executed": _rel(res.executed, out_dir) if res.executed else old.get("executed"),
            "pages": res.pages if res.pages is not None else old.get("pages"), "attempts": res.attempts,
            "timings": {k: round(v, 4) for k, v in res.timings.items()},
            "updated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "pk2d_version": __version__}
        write_json(out_dir / MANIFEST_NAME, manifest)

    for u in units:
        previous = entries.get(u.id, {})
        try:
            key = unit_key(u, code=code)
        except ReportError as exc:
            finished(u, "", UnitResult(u, "failed", error=getattr(exc, "problem", exc.message)))
            continue
        if retry_failed and previous.get("status") != "failed":
            results[u.id] = UnitResult(u, "skipped", note="not failed last time")
            continue
        p = unit_paths(u, out_dir)
        keys = previous.get("formats") or {}
        mine = formats_of(u.kind, formats)
        if not mine:
            results[u.id] = UnitResult(u, "skipped", note=f"no {'/'.join(formats)} for a {u.kind} report")
            continue
        fresh = [f for f in mine if keys.get(f) == key and p[f].is_file()]
        if len(fresh) == len(mine) and previous.get("status") == "rendered" and not force and not retry_failed:
            results[u.id] = UnitResult(u, "skipped", outputs=tuple(p[f] for f in mine), executed=p["executed"],
                                       note="unchanged")
            continue
        todo.append((u, key, mine))

    summary_extra = {"pdf_engine": "", "peak_memory_mb": None}
    interrupted = False
    if todo:
        from .workers import run_todo, run_todo_on

        if engine is not None and getattr(engine, "name", "local") != "local":
            interrupted = run_todo_on(engine, todo, out_dir, kernel_name, progress, timeout, retries, pdf_engine,
                                      kernel_mode, finished, summary_extra, preload)
        else:
            interrupted = run_todo(todo, out_dir, jobs, kernel_name, progress, timeout, retries, pdf_engine,
                                   kernel_mode, finished, summary_extra, preload)
    for u in units:  # units never reached (interrupted): not rendered
        results.setdefault(u.id, UnitResult(u, "skipped", note="interrupted"))
    summary = RenderSummary(tuple(results[u.id] for u in units), time.perf_counter() - t_batch, jobs,
                            summary_extra["pdf_engine"], summary_extra["peak_memory_mb"], interrupted)
    if interrupted:
        raise BatchInterrupted(summary)
    return summary


