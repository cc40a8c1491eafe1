"""Executing a notebook with papermill in a kernel of :mod:`pk2d.kernel`: reports and stage notebooks.

:func:`run_notebook` runs papermill with pk2d's engine, whose nbclient client takes a kernel from a
:class:`~pk2d.kernel.KernelPool` (or starts one), times kernel start, execution and stop, never
changes the process's working folder, and retries only a kernel that failed to start.
:func:`execute_notebook` keeps the executed copy of a stage notebook.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

from .errors import ReportError
from .fmt import printable
from .kernel import KernelPool, KernelStartError, PoolClosed, SpawnedKernel, discard

ENGINE_NAME = "pk2d"


class Execution:
    """Per-notebook context handed to the engine: where the kernel comes from, and the timings."""

    def __init__(self, pool: KernelPool | None, cwd: Path, kernel_name: str):
        self.pool = pool
        self.cwd = cwd
        self.kernel_name = kernel_name
        self.timings: dict[str, float] = {}
        self.nb = None
        self.kernel = None


_ENGINE_LOCK = threading.Lock()


def engine():
    """papermill's nbclient engine whose client takes its kernel from a :class:`KernelPool` (or starts
    one), times start / execution / stop, and never changes the process's working folder."""
    with _ENGINE_LOCK:
        if getattr(engine, "cls", None) is None:
            engine.cls = _make_engine()
        return engine.cls


def _make_engine():
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    nb_log = logging.getLogger(__name__ + ".nbclient")

    class Client(PapermillNotebookClient):
        @contextlib.contextmanager
        def setup_kernel(self, **kwargs):
            ex: Execution = self._pk2d
            t0 = time.perf_counter()
            try:
                if ex.pool is not None:
                    k, _ = ex.pool.take()
                else:
                    k = SpawnedKernel(ex.kernel_name, ex.cwd)
                ex.kernel = k
                self.km = k
                self.start_new_kernel_client()
            except Exception as exc:
                tail = ex.kernel.log_tail() if ex.kernel is not None else []
                if ex.kernel is not None:
                    discard(ex.kernel)
                detail = f"{type(exc).__name__}: {exc}" + (f" | kernel: {' / '.join(tail)}" if tail else "")
                raise KernelStartError(detail[:400]) from exc
            t1 = time.perf_counter()
            ex.timings["kernel_start"] = t1 - t0
            try:
                yield
            finally:
                t2 = time.perf_counter()
                ex.timings["execute"] = t2 - t1
                with contextlib.suppress(Exception):
                    self._cleanup_kernel()
                discard(k)
                ex.timings["kernel_stop"] = time.perf_counter() - t2

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            ex = kwargs.pop("pk2d_execution")
            ex.nb = nb_man.nb
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=nb_log, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file, shutdown_kernel="immediate")
            client = Client(nb_man, **final)
            client._pk2d = ex
            return client.execute()

    papermill_engines.register(ENGINE_NAME, Engine)  # at first use, never on import
    return Engine


class ExecutionFailed(Exception):
    """A notebook failed: ``problem`` is one line; ``cell_index`` the failing cell of the kept notebook."""

    def __init__(self, problem: str, cell_index: int | None = None, attempts: int = 0, executed: bool = False):
        super().__init__(problem)
        self.problem = problem
        self.cell_index = cell_index
        self.attempts = attempts
        self.executed = executed


def run_notebook(template: Path, parameters: dict, *, pool: KernelPool | None = None, kernel_name: str = "python3",
                 timeout: int | None = 600, retries: int = 2, timings: dict | None = None):
    """Execute ``template`` with papermill; return ``(notebook, attempts)``.

    Kernel start failures are retried ``retries`` times (never errors in the notebook). Raises
    :class:`ExecutionFailed` naming the failing cell; ``exc.nb`` is the partly executed notebook.
    """
    import random

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    engine()
    timings = {} if timings is None else timings
    template = Path(template).resolve()
    attempts = 0
    while True:
        attempts += 1
        ex = Execution(pool, template.parent, kernel_name)
        t0 = time.perf_counter()
        try:
            nb = pm.execute_notebook(
                str(template), None, parameters=parameters, engine_name=ENGINE_NAME,
                request_save_on_cell_execute=False, kernel_name=kernel_name, progress_bar=False,
                log_output=False, start_timeout=60, execution_timeout=timeout, pk2d_execution=ex)
        except KernelStartError as exc:
            timings.update(ex.timings, papermill=time.perf_counter() - t0)
            if isinstance(exc.__cause__, PoolClosed) or isinstance(exc, PoolClosed):
                raise ExecutionFailed("stopped before it started", attempts=attempts) from None
            if attempts > retries:
                raise ExecutionFailed(f"the kernel did not start ({attempts} attempts): {exc}", attempts=attempts) from None
            time.sleep(random.uniform(0.2, 0.8) * attempts)
            continue
        except PapermillExecutionError as exc:
            timings.update(ex.timings, papermill=time.perf_counter() - t0)
            if ex.nb is not None:  # papermill's two marker cells out, so cell_index matches the kept notebook
                ex.nb.cells = [c for c in ex.nb.cells
                               if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
            err = ExecutionFailed(printable(f"{exc.ename}: {exc.evalue}", 300), exc.cell_index, attempts)
            err.nb = ex.nb
            raise err from None
        except Exception as exc:  # dead kernel, cell timeout...
            timings.update(ex.timings, papermill=time.perf_counter() - t0)
            err = ExecutionFailed(printable(f"{type(exc).__name__}: {exc}", 300), _running_cell(ex.nb), attempts)
            err.nb = ex.nb
            raise err from None
        timings.update(ex.timings, papermill=time.perf_counter() - t0)
        return nb, attempts


def _running_cell(nb) -> int | None:
    for i, cell in enumerate(getattr(nb, "cells", []) or []):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return i
    return None


def execute_notebook(template: str | Path, executed: str | Path, parameters: dict, *,
                     kernel_name: str = "python3", timeout: int | None = None, retries: int = 2) -> dict:
    """Execute one notebook (a stage notebook) in a fresh kernel; keep the executed copy (written
    atomically, also when a cell fails). Returns the phase timings; raises
    :class:`~pk2d.errors.ReportError` naming the notebook and the failing cell."""
    import nbformat

    from .io import write_text

    timings: dict[str, float] = {}
    try:
        nb, _ = run_notebook(Path(template), dict(parameters), kernel_name=kernel_name, timeout=timeout,
                             retries=retries, timings=timings)
    except ExecutionFailed as exc:
        if getattr(exc, "nb", None) is not None:
            with contextlib.suppress(Exception):
                write_text(executed, nbformat.writes(exc.nb))
        raise ReportError(Path(template).name, exc.problem, cell_index=exc.cell_index,
                          fix=f"open {executed} to see the failing cell") from None
    write_text(executed, nbformat.writes(nb))
    return timings


