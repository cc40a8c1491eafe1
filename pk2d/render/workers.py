"""Where the reports of a batch are rendered: threads over a kernel pool here, or the workers of a cluster.

:func:`run_todo` renders in this process, ``jobs`` at a time, over one
:class:`~pk2d.kernel.KernelPool` and one PDF printer. :func:`run_todo_on` fans the
same work out over a Dask engine (:mod:`pk2d.engine`): the units are dealt out to
the workers in turn, each worker renders its share with a kernel and a printer of
its own (:func:`render_share`), and each share's results come back here, where the
batch records them in the manifest as the share ends. Either way one unit is rendered by
:func:`pk2d.render.batch._render_one`, so the reports are the same.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..fmt import printable
from ..kernel import KernelPool, KernelStartError
from ..errors import ReportError
from .results import UnitResult


def run_todo(todo, out_dir, jobs, kernel_name, progress, timeout, retries, pdf_engine, kernel_mode, finished,
              extra, preload=None) -> bool:
    """Render ``todo`` with a kernel pool and a printer; True when interrupted."""
    from tqdm import tqdm

    from .pdf import printer as make_printer

    memory = _batch_module()._MemorySampler()
    pools: dict[Path, KernelPool] = {}
    printer = None
    stop = threading.Event()
    interrupted = False
    bar = tqdm(total=len(todo), desc="laporan", unit="lap", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress else True, leave=False)
    try:
        with _batch_module()._signals_raise():
            try:
                if any("pdf" in f for _, _, f in todo):
                    printer = make_printer(pdf_engine, pages=jobs)
                    extra["pdf_engine"] = printer.name
                broken: dict[Path, str] = {}
                for u, _, _ in todo:
                    folder = u.template.resolve().parent
                    if folder not in pools and folder not in broken:
                        try:
                            pools[folder] = KernelPool(size=min(jobs, len(todo)), kernel_name=kernel_name,
                                                       cwd=folder, mode=kernel_mode, preload=preload)
                        except (KernelStartError, ReportError) as exc:  # every unit of that folder fails, said once
                            broken[folder] = printable(getattr(exc, "message", str(exc)), 300)

                def work(u, key, fmts):
                    if stop.is_set():
                        return None
                    folder = u.template.resolve().parent
                    if folder in broken:
                        return UnitResult(u, "failed", error=f"the kernel did not start: {broken[folder]}")
                    return _batch_module()._render_one(u, out_dir, formats=fmts, key=key, pool=pools[folder],
                                       printer=printer, kernel_name=kernel_name, timeout=timeout, retries=retries)

                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pk2d-render") as ex:
                    futures = {ex.submit(work, *item): item for item in todo}
                    try:
                        for fut in as_completed(futures):
                            u, key, fmts = futures[fut]
                            res = fut.result()
                            if res is None:
                                continue
                            if stop.is_set() and res.status == "failed":
                                continue  # killed by the interruption: renders next time
                            finished(u, key, res, fmts if res.status == "rendered" else ())
                            bar.update(1)
                    except KeyboardInterrupt:
                        stop.set()
                        interrupted = True
                        for f in futures:
                            f.cancel()
                        for pool in pools.values():
                            pool.kill_running()
                        for fut in futures:  # record the units that still finished whole
                            if fut.cancelled():
                                continue
                            with contextlib.suppress(Exception):
                                res = fut.result(timeout=30)
                                if res is not None and res.status == "rendered":
                                    u, key, fmts = futures[fut]
                                    finished(u, key, res, fmts)
            except KeyboardInterrupt:
                stop.set()
                interrupted = True
    finally:
        bar.close()
        for pool in pools.values():
            pool.close()
        if printer is not None:
            printer.close()
        extra["peak_memory_mb"] = memory.stop()
    return interrupted


def _batch_module():
    from . import batch

    return batch


def render_share(share: list, out_dir: str, kernel_name: str, timeout, retries: int, pdf_engine: str,
                 kernel_mode: str, preload) -> list[UnitResult]:
    """One worker's share of a batch: ``(unit, key, formats)`` items rendered in turn, with one kernel
    and one printer started for the share and stopped after it. Never raises for a report problem."""
    from .pdf import printer as make_printer

    out_dir = Path(out_dir)
    results, pools, printer = [], {}, None
    try:
        if any("pdf" in f for _, _, f in share):
            printer = make_printer(pdf_engine, pages=1)
        for u, key, fmts in share:
            folder = u.template.resolve().parent
            try:
                if folder not in pools:
                    pools[folder] = KernelPool(size=1, kernel_name=kernel_name, cwd=folder, mode=kernel_mode,
                                               preload=preload)
            except (KernelStartError, ReportError) as exc:
                results.append(UnitResult(u, "failed", error="the kernel did not start: "
                                          + printable(getattr(exc, "message", str(exc)), 300)))
                continue
            results.append(_batch_module()._render_one(u, out_dir, formats=fmts, key=key, pool=pools[folder],
                                                       printer=printer, kernel_name=kernel_name, timeout=timeout,
                                                       retries=retries))
    finally:
        for pool in pools.values():
            pool.close()
        if printer is not None:
            printer.close()
    return results


def partition_of(unit) -> tuple:
    """The partition of the run's tables a unit's report rows are in (:func:`pk2d.partitions.of_area`)."""
    from ..partitions import of_area

    return of_area(unit.kind, unit.code)


def shares(todo: list, n: int) -> list[list]:
    """``todo`` dealt to ``n`` workers a kabupaten at a time (each kabupaten's units to one worker, the
    largest first, each to the worker with the fewest units so far), so that each worker reads the report
    rows of its own kabupaten only. Every share keeps the order of ``todo``.

    >>> from types import SimpleNamespace as U
    >>> todo = [(U(kind="desa", code=c), None, ()) for c in ("63.02.1.1", "63.02.1.2", "63.09.1.1", "63.10.1.1")]
    >>> [[u.code for u, _, _ in s] for s in shares(todo, 2)]
    [['63.02.1.1', '63.02.1.2'], ['63.09.1.1', '63.10.1.1']]
    """
    groups: dict[tuple, list[int]] = {}
    for i, (u, _, _) in enumerate(todo):
        groups.setdefault(partition_of(u), []).append(i)
    load = [[] for _ in range(max(1, n))]
    for _, idx in sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
        min(load, key=len).extend(idx)
    return [[todo[i] for i in sorted(idx)] for idx in load if idx]


def run_todo_on(engine, todo, out_dir, kernel_name, progress, timeout, retries, pdf_engine, kernel_mode, finished,
                extra, preload=None) -> bool:
    """Render ``todo`` on the workers of a Dask ``engine``, one share per worker, recording each share's
    results once it is back; a share lost with its worker fails its units (the batch goes on). True
    when interrupted (Ctrl-C: the shares still running are cancelled, what came back is recorded)."""
    n = max(1, min(int(engine.workers or 1), len(todo)))
    extra["pdf_engine"] = pdf_engine if pdf_engine != "auto" else "auto (per worker)"
    futures = {}
    for share in shares(todo, n):
        load = (*preload, sorted({partition_of(u) for u, _, _ in share}, key=str)) if preload else None
        futures[engine.client.submit(render_share, share, str(out_dir), kernel_name, timeout, retries, pdf_engine,
                                     kernel_mode, load, pure=False)] = share
    try:
        for fut, share in futures.items():  # recorded share by share, as each comes back
            try:
                results = fut.result()
            except Exception as exc:  # the worker died, or the share could not start at all
                results = [UnitResult(u, "failed", error=printable(f"{type(exc).__name__}: {exc}", 300))
                           for u, _, _ in share]
            for (u, key, fmts), res in zip(share, results):
                finished(u, key, res, fmts if res.status == "rendered" else ())
    except KeyboardInterrupt:
        engine.client.cancel(list(futures))
        return True
    return False
