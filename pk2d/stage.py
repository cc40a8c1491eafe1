"""Writing a stage into the run: a temporary folder, then a generation, then the record (:mod:`pk2d.store`).

:func:`stage_writer` holds the processed folder's lock for the whole stage, tells whether the stage
is up to date (same key: inputs, keyed settings and code), gives the paths to write to, and on
success makes the files a generation (named by their hashes) and commits a new run record; on any
failure or interruption it removes what it wrote, and the run stays as it was. A processed folder that
cannot be written (a file in its place, no permission, a read-only or full disk) stops the stage before it
computes anything, or, when the disk fills while it writes, with the same clear
:class:`~pk2d.errors.OutputFolderError` (never a bare ``OSError``).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .io import freeze as _freeze
from .io import process_alive as _alive
from .io import ensure_writable_dir, sha256_file, sweep_temp_files, write_json
from .io import thaw as _thaw
from .errors import StaleRunError, os_error
from .store import (FORMAT, RUN_FILE, RUNS_DIR, STAGES, UPSTREAM, Run, StageRecord, _code, _pinned_records,
                    current_record, digest, folder_lock, gc_lock, open_run)


#: how messages name the processed folder
PROCESSED_FOLDER = "The processed-data folder (--processed)"


class StageWriter:
    """Writes one stage's outputs into a temporary folder; :meth:`commit` makes them a generation
    and records it in ``run.json``. Use through :func:`stage_writer`."""

    def __init__(self, pdir: Path, stage: str, key: str, inputs: Mapping[str, str], settings: Mapping[str, Any],
                 up_to_date: bool):
        self.processed_dir = pdir
        self.stage = stage
        self.key = key
        self.inputs = dict(inputs)
        self.settings = _thaw(settings)
        self.up_to_date = up_to_date
        self.folder: Path | None = None
        self.run: Run | None = None

    def _tmp(self) -> Path:
        if self.folder is None:
            base = self.processed_dir / self.stage
            base.mkdir(parents=True, exist_ok=True)
            self.folder = base / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
            self.folder.mkdir()
        return self.folder

    def directory(self) -> Path:
        """The temporary folder the outputs are written to (it becomes the generation)."""
        return self._tmp()

    def path(self, name: str) -> Path:
        """Where to write output ``name`` (inside the temporary folder)."""
        p = self._tmp() / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_parquet(self, name: str, df) -> Path:
        df.to_parquet(self.path(name), index=False)
        return self.path(name)

    def write_json(self, name: str, obj) -> Path:
        self.path(name).write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str, sort_keys=False) + "\n",
                                   encoding="utf-8")
        return self.path(name)

    def record_setting(self, name: str, value) -> None:
        """A setting learnt while computing (e.g. the rounds found); recorded, not part of the key."""
        self.settings[name] = _thaw(value)

    def commit(self) -> Run:
        folder = self._tmp()
        outputs = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                outputs[p.relative_to(folder).as_posix()] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        generation = digest(outputs)[:16]
        target = self.processed_dir / self.stage / generation
        if target.is_dir() and _intact(target, outputs):
            shutil.rmtree(folder, ignore_errors=True)  # the same files are there already
        else:
            if target.is_dir():  # a damaged copy (a file edited or lost): the fresh one replaces it
                trash = target.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
                os.replace(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(folder, target)
        self.folder = None
        return self._record(generation, outputs)

    def recommit(self) -> Run:
        """Up to date, but with settings that decide nothing (a re-saved desa lokus file, a moved raw
        folder) recorded anew: the same generation, a new record."""
        rec = open_run(self.processed_dir, check=False).record(self.stage)
        self.settings = {**_thaw(rec.settings), **self.settings}
        return self._record(rec.generation, _thaw(rec.outputs))

    def _record(self, generation: str, outputs: dict) -> Run:
        rec = StageRecord(self.stage, self.key, generation, _freeze(self.inputs), _freeze(outputs),
                          _freeze(self.settings), _freeze(_code(self.stage)))
        data = current_record(self.processed_dir)
        stages = {k: v for k, v in data.get("stages", {}).items() if k in STAGES}
        stages[self.stage] = rec.to_json()
        body = {"format": FORMAT, "stages": {k: stages[k] for k in STAGES if k in stages}}
        run_id = digest(body)[:20]
        record = {"format": FORMAT, "id": run_id, "stages": body["stages"]}
        runs = self.processed_dir / RUNS_DIR
        if not (runs / f"{run_id}.json").is_file():
            write_json(runs / f"{run_id}.json", record)
        if current_record(self.processed_dir).get("id") != run_id:
            write_json(self.processed_dir / RUN_FILE, record)
        collect_garbage(self.processed_dir)
        self.run = open_run(self.processed_dir, check=False)
        return self.run

    def abort(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


@contextlib.contextmanager
def stage_writer(processed_dir: str | Path, stage: str, *, inputs: Mapping[str, str], settings: Mapping[str, Any],
                 keyed: Iterable[str] | None = None, refresh: Iterable[str] = (),
                 force: bool = False) -> Iterator[StageWriter]:
    """Write one stage under the folder lock; commit on success, leave nothing behind on failure.

    ``inputs``: what the stage reads (name -> sha256). ``settings``: recorded; ``keyed`` names the
    settings that decide the results (default: all). The writer's ``up_to_date`` is True when the
    current record has the same key and its files are in place (and ``force`` is False): the caller
    then reads the run instead of computing. ``refresh`` names unkeyed settings that only say where the
    inputs were found (a raw folder, the desa lokus file's hash): when they alone changed, the stage
    stays up to date and the record is renewed with them.
    """
    pdir = Path(processed_dir).resolve()
    ensure_writable_dir(pdir, PROCESSED_FOLDER)
    settings = _thaw(settings)
    keyed_settings = settings if keyed is None else {k: settings.get(k) for k in keyed}
    key = digest({"stage": stage, "inputs": dict(inputs), "settings": keyed_settings, "code": _code(stage)})
    try:
        with folder_lock(pdir, f"pk2d {stage}"):
            for folder in (pdir, pdir / RUNS_DIR):  # a killed commit's run.json / runs/<id>.json temporary file
                sweep_temp_files(folder)
            up_to_date, resave = False, False
            current = open_run(pdir, check=False) if (pdir / RUN_FILE).is_file() else None
            if current is not None:
                _inputs_still_current(current, stage, inputs)
                if not force and current.has(stage) and current.record(stage).key == key:
                    rec = current.record(stage)
                    up_to_date = _intact(current.folder(stage), _thaw(rec.outputs))
                    old = _thaw(rec.settings)
                    resave = up_to_date and any(old.get(k) != settings.get(k) for k in refresh)
            w = StageWriter(pdir, stage, key, inputs, settings, up_to_date)
            try:
                yield w
                if resave:
                    w.recommit()
                elif up_to_date:
                    w.run = open_run(pdir, check=False)
                else:
                    w.commit()
            except BaseException:
                w.abort()
                raise
    except OSError as exc:  # the disk filled (or turned read-only) while the stage wrote: nothing was kept
        err = os_error(exc, folder=pdir, what=PROCESSED_FOLDER)
        if err is None:
            raise
        raise err from None


def _intact(folder: Path, outputs: Mapping[str, Mapping]) -> bool:
    """Every recorded file of a generation is there with its recorded size and sha256."""
    for name, meta in outputs.items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            return False
    return True


def _sha_or_none(rec: StageRecord, name: str) -> str | None:
    try:
        return rec.sha256(name)
    except KeyError:
        return None


def _inputs_still_current(run: Run, stage: str, inputs: Mapping[str, str]) -> None:
    """Inside the lock: the upstream outputs a stage was about to read are still the current ones (another
    process may have rerun the stage before it meanwhile)."""
    for up in UPSTREAM[stage]:
        if not run.has(up):
            continue
        rec = run.record(up)
        changed = [k for k, v in inputs.items() if k.startswith(up + "/") and _sha_or_none(rec, k.split("/", 1)[1]) != v]
        if changed:
            raise StaleRunError(run.processed_dir, [f"`pk2d {up}` committed new outputs while `pk2d {stage}` was "
                                                    f"starting ({', '.join(changed)})"], f"pk2d {stage}")


def collect_garbage(processed_dir: str | Path, *, keep_runs: int = 20) -> None:
    """Remove generations that neither the current record nor a pinned one uses, temporary folders of
    processes that ended, and all but the newest ``keep_runs`` old records (under the exclusive
    collection lock, so no reader is between reading ``run.json`` and pinning it)."""
    with gc_lock(processed_dir, shared=False):
        _collect(Path(processed_dir), keep_runs)


def _collect(pdir: Path, keep_runs: int) -> None:
    records = [current_record(pdir), *_pinned_records(pdir)]
    used = {(s, r["generation"]) for rec in records for s, r in rec.get("stages", {}).items()}
    for stage in STAGES:
        base = pdir / stage
        if not base.is_dir():
            continue
        for d in base.iterdir():
            if not d.is_dir():
                continue
            if d.name.startswith(".tmp-"):
                pid = d.name.split("-")[1]
                if pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(d, ignore_errors=True)
            elif (stage, d.name) not in used:
                shutil.rmtree(d, ignore_errors=True)
    runs = pdir / RUNS_DIR
    if runs.is_dir():
        keep = {rec.get("id") for rec in records}
        old = sorted((p for p in runs.glob("*.json") if p.stem not in keep), key=lambda p: p.stat().st_mtime)
        for p in old[:-keep_runs] if keep_runs else old:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
