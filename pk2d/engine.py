"""Where the per-partition work runs: in this process (default) or on a Dask cluster.

Every stage cuts its work into tasks of one partition each (a kabupaten of the
processed data, :mod:`pk2d.partitions`) and hands them to an engine's
:meth:`Engine.map`. The task functions are the same plain pandas functions
whichever engine runs them, and the engine only decides where: so a run on a
cluster gives the same outputs as a run in one process (a test compares them).

* ``local`` (:class:`LocalEngine`): the tasks one after the other in this
  process. The right choice for a district's data.
* ``dask`` (:class:`DaskEngine`): ``dask.distributed``. ``workers=N`` starts a
  local cluster of N single-threaded worker processes on this machine;
  ``scheduler="tcp://HOST:PORT"`` joins a cluster started with Dask's own
  commands (``dask scheduler``, then ``dask worker tcp://HOST:PORT`` on each
  machine). Tasks read and write their partition's files themselves, so the
  processed folder must be on a file system every worker sees under the same
  path (and pk2d of the same version installed on every worker).

The engine decides nothing about the numbers, so it is not part of any stage's
key: a run made with one engine is up to date for the other.

>>> with open_engine("local") as eng:
...     eng.map(abs, [-1, 2, -3])
[1, 2, 3]
"""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import Pk2dError

ENGINES = ("local", "dask")


class EngineError(Pk2dError):
    """The Dask cluster cannot be started or reached (``address``: the scheduler asked for)."""

    def __init__(self, problem: str, *, fix: str, address: str | None = None):
        self.address = address
        super().__init__(f"Dask engine: {problem}", fix=fix)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread: a matrix product summed by several threads can differ in its last
    bits from one summed by one, so every computation of a stage (its tasks, wherever they run, and what the
    command adds after them) runs with one, and no number depends on the engine or on the machine's cores
    (Dask's workers have one already, from their nanny's ``OPENBLAS_NUM_THREADS=1``; this process may have
    more). The limit is the process's: a worker runs one task at a time (``--nthreads 1``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def task(fn: Callable, item, *args, **kwargs):
    """``fn(item, *args, **kwargs)`` with one BLAS thread (:func:`one_blas_thread`), wherever it runs."""
    with one_blas_thread():
        return fn(item, *args, **kwargs)


class LocalEngine:
    """The tasks in order, in this process."""

    name = "local"
    workers = 1

    def map(self, fn: Callable, items: Sequence, *args, **kwargs) -> list:
        """``[fn(item, *args, **kwargs) for item in items]`` (each as :func:`task`)."""
        return [task(fn, item, *args, **kwargs) for item in items]

    def describe(self) -> str:
        return "local (in-process)"

    def close(self) -> None:
        pass


class DaskEngine:
    """Tasks on a ``dask.distributed`` cluster: a local one of ``workers`` processes, or ``scheduler``'s.

    ``memory_limit`` (per worker, Dask's syntax such as ``"4GB"``; local clusters only) defaults to an
    equal share of the machine's memory.
    """

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, *, memory_limit: str = "auto",
                 timeout: float = 30.0):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise EngineError(f"dask.distributed cannot be imported ({exc}).",
                              fix="reinstall pk2d's dependencies: `make setup`.") from None
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise EngineError(f"no scheduler answers at {scheduler} ({type(exc).__name__}).", address=scheduler,
                                  fix="start one with `dask scheduler` and workers with `dask worker "
                                      f"{scheduler}`, or leave out --scheduler for a local cluster "
                                      "(--workers N).") from None
            try:
                self.client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                self.client.close()
                raise EngineError(f"the scheduler at {scheduler} has no worker.", address=scheduler,
                                  fix=f"start workers with `dask worker {scheduler}`.") from None
        else:
            n = max(1, int(workers or os.cpu_count() or 1))
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        memory_limit=memory_limit, dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster, set_as_default=False)
        self.address = self.client.scheduler.address

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"]) if hasattr(self, "client") else 0

    def map(self, fn: Callable, items: Sequence, *args, **kwargs) -> list:
        """``fn(item, *args, **kwargs)`` for every item on the cluster; results in the order of ``items``.

        The error of the first failed task in the order of ``items`` is raised here as it was raised there
        (a :class:`~pk2d.errors.Pk2dError` with its message and fix), as the in-process engine would have
        met it first; the other tasks are cancelled. A worker lost on a task (out of memory, killed) is an
        :class:`EngineError`."""
        items = list(items)
        if not items:
            return []
        futures = [self.client.submit(task, fn, item, *args, pure=False, key=f"{getattr(fn, '__name__', 'task')}-"
                                      f"{uuid.uuid4().hex}", **kwargs) for item in items]
        try:
            for f in futures:  # in order: the first failure of the items' order is the one raised
                exc = f.exception()
                if exc is not None:
                    if type(exc).__name__ == "KilledWorker":
                        raise EngineError(f"a worker died running {getattr(fn, '__name__', 'a task')} "
                                          f"({exc}).", address=self.address,
                                          fix="give each worker more memory (fewer workers per machine, or "
                                              "--memory-limit of `dask worker`), or smaller partitions.")
                    raise exc
            return self.client.gather(futures)
        finally:
            self.client.cancel(futures)

    def describe(self) -> str:
        where = "local cluster" if self.cluster is not None else "cluster"
        return f"dask ({where} {self.address}, {self.workers} worker(s))"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


Engine = Any  # LocalEngine | DaskEngine


def check_written(folder: Path, files: dict[str, int]) -> None:
    """Every file a task wrote (``files``: path relative to ``folder`` -> size) is there with its size, seen
    from this machine; a worker that does not share the folder wrote them elsewhere: :class:`EngineError`."""
    for rel, size in files.items():
        p = Path(folder) / rel
        if not p.is_file() or p.stat().st_size != size:
            raise EngineError(f"a worker wrote {p}, which this machine does not see.",
                              fix="put the raw and processed folders on a file system every worker mounts under "
                                  "the same path, or run without --scheduler.")


def check_options(engine: str = "local", workers: int | None = None, scheduler: str | None = None) -> None:
    """Refuse a contradictory choice before anything starts."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}.", fix=f"use one of {', '.join(ENGINES)}.")
    if engine == "local" and (workers or scheduler):
        raise EngineError("--workers and --scheduler need --engine dask.", fix="add --engine dask, or drop them.")
    if workers is not None and int(workers) < 1:
        raise EngineError(f"--workers {workers}: at least one worker is needed.", fix="e.g. --workers 2.")
    if workers and scheduler:
        raise EngineError("--workers starts a local cluster; --scheduler joins an existing one: not both.",
                          fix="drop --workers (the cluster's workers are started with `dask worker`), or "
                              "drop --scheduler.", address=scheduler)
    if scheduler and "://" not in scheduler:
        raise EngineError(f"--scheduler {scheduler!r} is not an address.", address=scheduler,
                          fix="give the address `dask scheduler` prints, e.g. tcp://10.0.0.5:8786.")


@contextlib.contextmanager
def open_engine(engine="local", *, workers: int | None = None, scheduler: str | None = None) -> Iterator[Engine]:
    """The engine for a command, closed (a local cluster shut down) at the end.

    ``engine`` may also be an engine already open (it is then used and left open).
    """
    if not isinstance(engine, str):
        yield engine
        return
    check_options(engine, workers, scheduler)
    eng = LocalEngine() if engine == "local" else DaskEngine(workers, scheduler)
    try:
        yield eng
    finally:
        eng.close()
