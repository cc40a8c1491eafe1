"""The run record: one object that knows everything a run produced and the settings it used.

Every stage (clean -> index -> compare) writes its outputs into a new
*generation* folder of its own and then records it in ``run.json``::

    data/processed/run.json                  the current run record (no wall-clock times)
    data/processed/runs/<id>.json            every record ever committed (small, immutable)
    data/processed/clean/<gen>/families/, members/, rejects.csv, cleaning_log.json
    data/processed/index/<gen>/scores/, areas/, area_components/, indeks.xlsx
    data/processed/compare/<gen>/league/, ..., report_*/, audit.json, compare.xlsx

Every table is a Parquet dataset partitioned by province and kabupaten (:mod:`pk2d.partitions`;
a province's own rows in its partition without a kabupaten), written by the tasks of its stage one
kabupaten each; :meth:`Run.table` reads one whole or by kabupaten (``filters``), :meth:`Run.partitions`
lists its parts.

A generation is named by the hash of its files, so a stage that reruns on
unchanged inputs writes the same generation and changes no byte, and a stage
killed half-way leaves only a temporary folder (swept later): its outputs
become part of the run together, when ``run.json`` is replaced, or not at all.
Readers never lock: a report batch *pins* the record it opened, so a stage
that commits a newer run meanwhile cannot remove or mix what the batch reads.

:func:`open_run` reads a record and never computes. With ``check=True`` it
compares the record with the world (catalogue files, raw inputs, the desa
lokus list, the pk2d code of each stage, and each stage's inputs against the
outputs of the stage before it) and raises :class:`~pk2d.errors.StaleRunError`
naming what changed and the command that brings the run up to date.

>>> sorted(STAGES), STAGE_OF["scores"]
(['clean', 'compare', 'index'], 'index')
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping, Sequence

from . import __version__, paths
from .errors import FileSystemError, MissingInputError, StaleRunError
from .io import freeze as _freeze
from .io import process_alive as _alive
from .io import sha256_file
from .io import thaw as _thaw
from .locks import GC_LOCK, LOCK_FILE, folder_lock, gc_lock  # noqa: F401 (re-exported)
from .partitions import SCHEMA_FILE

STAGES = ("clean", "index", "compare")
#: the stages each stage reads
UPSTREAM = {"clean": (), "index": ("clean",), "compare": ("clean", "index")}
RUN_FILE = "run.json"
RUNS_DIR = "runs"
PINS_DIR = ".pins"
FORMAT = 1
#: files of the package whose content decides each stage's results (paths relative to pk2d/);
#: the report and render code is not here: it decides how a report looks, and the render
#: batch keys on it instead (a test checks that every module is in exactly one list)
STAGE_CODE = {
    "clean": ("cleaning.py", "clean_stage.py", "rawio.py", "rawfile.py", "parse.py", "validate.py", "tools.py", "mapping.py",
              "mapping_read.py", "contract.yaml", "data/wilayah.csv"),
    "index": ("catalogue.py", "features.py", "score.py", "areas.py", "survey.py", "index_stage.py"),
    "compare": ("compare.py", "compare_design.py", "compare_stage.py", "audit.py", "lokus.py", "report/tables.py",
                "report/digests.py", "report/province_tables.py", "report/disclosure.py", "catalogues/agencies.yaml"),
}
#: shared by every stage (their change makes every stage out of date); the survey design engine is
#: used by clean (design checks), index (estimates) and compare (models)
COMMON_CODE = ("pipeline.py", "store.py", "locks.py", "stage.py", "io.py", "partitions.py", "defaults.py", "design.py", "calibration.py", "estimators.py",
               "reliability.py", "engine.py")
#: code no stage result depends on: how things are shown (keyed by the report renderer, not by the run),
#: the synthetic generators and library extras (replicate designs)
PRESENTATION_CODE = ("__init__.py", "cli.py", "paths.py", "errors.py", "fmt.py", "text.py", "plots.py", "kernel.py", "execute.py",
                     "dictionary.py", "form.py", "synth.py", "synth_export.py", "synth_households.py", "synth_tools.py", "synth_places.py", "synth_superpop.py", "synth_sample.py", "replicate.py", "report/__init__.py", "report/sections.py",
                     "report/display.py", "report/privacy.py", "report/village.py", "report/plan.py", "report/province.py",
                     "report/district.py", "report/batch.py", "render/__init__.py", "render/unit.py",
                     "render/publish.py", "render/batch.py", "render/workers.py", "render/results.py", "render/index_page.py", "render/pdf.py",
                     "render/docx.py", "report/workbook.py", "interventions.py")
#: where each logical table lives: name -> stage (its folder ``<name>/``, or file ``<name>.parquet``/``.json``/``.csv``)
STAGE_OF = {
    **dict.fromkeys(("families", "members", "rejects", "cleaning_log"), "clean"),
    **dict.fromkeys(("scores", "areas", "area_components", "indeks"), "index"),
}


def _stage_of(name: str) -> str:
    return STAGE_OF.get(name, "compare")


# --- code fingerprints ------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def code_fingerprint(stage: str) -> str:
    """sha256 over the package files that decide ``stage``'s results (:data:`STAGE_CODE`)."""
    h = hashlib.sha256()
    for rel in sorted((*STAGE_CODE[stage], *COMMON_CODE)):
        p = paths.PACKAGE_DIR / rel
        h.update(rel.encode())
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


def _code(stage: str) -> dict:
    return {"pk2d_version": __version__, "fingerprint": code_fingerprint(stage)}


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def digest(obj) -> str:
    """sha256 of a JSON-able object in canonical form (sorted keys)."""
    return hashlib.sha256(_canonical(obj).encode("utf-8")).hexdigest()


# --- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageRecord:
    """What one stage produced and from what.

    ``inputs`` maps what the stage read (``clean/families``, ``raw/<file>``) to its sha256;
    ``outputs`` maps each file of the generation to ``{"sha256", "bytes"}``; ``settings`` holds
    every setting used (catalogue contents, design, seeds, draws, desa lokus...); ``key`` is the hash
    of inputs, keyed settings and code, which decides whether the stage is up to date.
    """

    name: str
    key: str
    generation: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, Mapping[str, Any]]
    settings: Mapping[str, Any]
    code: Mapping[str, str]

    @classmethod
    def from_json(cls, name: str, d: Mapping) -> "StageRecord":
        return cls(name, d["key"], d["generation"], _freeze(d.get("inputs", {})), _freeze(d.get("outputs", {})),
                   _freeze(d.get("settings", {})), _freeze(d.get("code", {})))

    def to_json(self) -> dict:
        return {"key": self.key, "generation": self.generation, "inputs": _thaw(self.inputs),
                "outputs": _thaw(self.outputs), "settings": _thaw(self.settings), "code": _thaw(self.code)}

    def sha256(self, file: str) -> str:
        """The hash of an output file, or of a partitioned table (``"families"``: the hash of its files'
        hashes, :mod:`pk2d.partitions`)."""
        if file in self.outputs:
            return self.outputs[file]["sha256"]
        parts = {k: v["sha256"] for k, v in self.outputs.items() if k.startswith(f"{file}/")}
        if not parts:
            raise KeyError(file)
        return digest(parts)


@dataclass(frozen=True)
class Run:
    """A run record opened with :func:`open_run`: settings, and typed readers of every output.

    Reading never computes. ``id`` is the hash of the record; ``stages`` maps a stage name to
    its :class:`StageRecord`.
    """

    processed_dir: Path
    id: str
    stages: Mapping[str, StageRecord]
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    # --- where things are --------------------------------------------------------------
    def has(self, stage: str) -> bool:
        return stage in self.stages

    def record(self, stage: str) -> StageRecord:
        if stage not in self.stages:
            raise MissingInputError(self.processed_dir / stage, f"Reading the {stage} stage",
                                    fix=f"Run `pk2d {stage}` (or `pk2d run`) first.")
        return self.stages[stage]

    def folder(self, stage: str) -> Path:
        return self.processed_dir / stage / self.record(stage).generation

    def path(self, name: str) -> Path:
        """The file of a logical table (``"scores"``, ``"league"``, ``"cleaning_log"``...) or an exact
        file name of a stage's outputs (``"indeks.xlsx"``)."""
        stage = _stage_of(name.split(".")[0])
        rec = self.record(stage)
        for candidate in (name, f"{name}.parquet", f"{name}.json", f"{name}.csv"):
            if candidate in rec.outputs:
                return self.folder(stage) / candidate
        if f"{name}/{SCHEMA_FILE}" in rec.outputs:  # a partitioned table: its folder
            return self.folder(stage) / name
        raise MissingInputError(self.processed_dir / stage / rec.generation / name, f"Reading {name!r}",
                                fix=f"The {stage} stage of this run did not write it; rerun `pk2d {stage}`.")

    def tables(self, stage: str) -> list[str]:
        """The Parquet tables ``stage`` wrote, by name (``"scores"``, ``"league"``, ``"report_facts"``...; a
        partitioned table once), in the order of its outputs."""
        names = (k.split("/")[0] for k in self.record(stage).outputs if "/" in k or k.endswith(".parquet"))
        return list(dict.fromkeys(n.removesuffix(".parquet") for n in names))

    def has_table(self, name: str) -> bool:
        stage = _stage_of(name.split(".")[0])
        if stage not in self.stages:
            return False
        outs = self.stages[stage].outputs
        return any(c in outs for c in (name, f"{name}.parquet", f"{name}.json", f"{name}.csv",
                                       f"{name}/{SCHEMA_FILE}"))

    def partitions(self, name: str) -> list[dict]:
        """The partitions of a partitioned table (``"families"``, ``"members"``, ``"scores"``): each
        ``{"values": {"kode_provinsi": ..., "kode_kabupaten": ...}, "path": part file}``, in order."""
        from . import partitions

        return partitions.partitions(self.path(name))

    # --- readers -------------------------------------------------------------------------
    def table(self, name: str, *, columns: Sequence[str] | None = None, filters=None, use_threads: bool = True):
        """A Parquet table of the run as a DataFrame (``filters`` as in :func:`pandas.read_parquet`); a
        partitioned table comes back whole, as it was written (:func:`pk2d.partitions.read`)."""
        import pandas as pd

        from . import partitions

        path = self.path(name)
        if path.is_dir():
            return partitions.read(path, columns=columns or None, filters=filters, use_threads=use_threads)
        return pd.read_parquet(path, columns=list(columns) if columns else None, filters=filters,
                               use_threads=use_threads)

    def json(self, name: str):
        key = ("json", name)
        if key not in self._cache:
            self._cache[key] = json.loads(self.path(name).read_text(encoding="utf-8"))
        return self._cache[key]

    def settings(self, stage: str) -> Mapping[str, Any]:
        return self.record(stage).settings

    def catalogue(self, catalogue: Any = None):
        """The catalogue exactly as the index stage used it (built from the content it recorded).

        ``catalogue``: an id (``"ikk"``), a catalogue, a path whose file the index used, or None for
        the report catalogue (:data:`pk2d.defaults.REPORT_CATALOGUE`).
        """
        from . import defaults
        from .catalogue import Catalogue, from_record

        recorded = self.settings("index")["catalogues"]
        if isinstance(catalogue, Catalogue):
            catalogue = catalogue.id
        wanted = str(catalogue or defaults.REPORT_CATALOGUE)
        cid = wanted if wanted in recorded else next(
            (k for k, v in recorded.items() if Path(v["source"]).name == Path(wanted).name
             and Path(wanted).suffix in (".yaml", ".yml")), None)
        if cid is None:
            raise StaleRunError(self.processed_dir, [f"catalogue {wanted!r} was not computed by the index stage "
                                                     f"of this run (it computed {', '.join(recorded)})"],
                                f"pk2d index --catalogue {wanted}")
        key = ("catalogue", cid)
        if key not in self._cache:
            self._cache[key] = from_record(recorded[cid])
        return self._cache[key]

    def catalogue_ids(self) -> tuple[str, ...]:
        return tuple(self.settings("index")["catalogues"])

    def rounds(self) -> tuple[int, ...]:
        """Survey rounds in the run, oldest first."""
        return tuple(int(r) for r in self.settings("index")["rounds"])

    def latest_round(self) -> int:
        return self.rounds()[-1]

    def round_or_latest(self, round: int | None) -> int:
        """``round`` checked against the run's rounds; ``None`` -> the latest (the one default everywhere)."""
        rounds = self.rounds()
        if round is None:
            return rounds[-1]
        if int(round) not in rounds:
            raise MissingInputError(self.processed_dir, f"Round {round}",
                                    fix=f"Use one of the rounds of this run: {', '.join(map(str, rounds))}.")
        return int(round)

    # --- consistency ---------------------------------------------------------------------
    def problems(self, *, require: Iterable[str] = STAGES, deep: bool = False) -> list[tuple[str, str]]:
        """(stage, one line) for every way the record no longer matches the world; empty when current.

        ``deep`` also re-hashes every output file (otherwise presence and size are checked).
        """
        found: list[tuple[str, str]] = []
        for stage in require:
            if stage not in self.stages:
                found.append((stage, f"the {stage} stage has not run (no {stage} record in {RUN_FILE})"))
        for stage, rec in self.stages.items():
            folder = self.processed_dir / stage / rec.generation
            for fname, meta in rec.outputs.items():
                p = folder / fname
                if not p.is_file():
                    found.append((stage, f"{stage} output {fname} is missing (folder {stage}/{rec.generation})"))
                elif p.stat().st_size != meta.get("bytes", -1) or (deep and sha256_file(p) != meta["sha256"]):
                    found.append((stage, f"{stage} output {fname} was changed after the stage wrote it"))
            for up in UPSTREAM[stage]:
                if up not in self.stages:
                    continue
                mine = {k: v for k, v in rec.inputs.items() if k.startswith(up + "/")}
                upstream = self.stages[up]
                for k, v in mine.items():
                    try:
                        theirs = upstream.sha256(k.split("/", 1)[1])
                    except KeyError:
                        theirs = None
                    if theirs != v:
                        found.append((stage, f"the {stage} stage read {k} of an earlier {up} run: "
                                             f"`pk2d {up}` ran again since"))
            if rec.code.get("fingerprint") != code_fingerprint(stage):
                was = rec.code.get("pk2d_version", "?")
                found.append((stage, f"the pk2d code of the {stage} stage changed since it ran "
                                     f"(recorded pk2d {was}, now {__version__})"))
        found += self._world_problems()
        return found

    def _world_problems(self) -> list[tuple[str, str]]:
        """Inputs outside the processed folder: raw exports, the desa lokus list, catalogue files."""
        from .catalogue import file_sha256

        out = []
        if "clean" in self.stages:
            s = self.stages["clean"].settings
            raw = self._resolve(s.get("raw_dir"))
            if raw is not None and not raw.is_dir():
                out.append(("clean", f"the raw folder {raw} that `pk2d clean` read is not there: its inputs "
                                     "cannot be checked (restore it, or clean again from where the exports are)"))
            if raw is not None and raw.is_dir():
                from .rawio import input_files

                now = {f"raw/{p.name}": p for p in input_files(raw)}
                was = {k: v for k, v in self.stages["clean"].inputs.items() if k.startswith("raw/")}
                for k in sorted(set(was) | set(now)):
                    if k not in now:
                        out.append(("clean", f"raw input {k[4:]} was removed from {raw}"))
                    elif k not in was:
                        out.append(("clean", f"raw input {k[4:]} was added to {raw}"))
                    elif sha256_file(now[k]) != was[k]:
                        out.append(("clean", f"raw input {k[4:]} changed since `pk2d clean` read it"))
        if "index" in self.stages:
            for cid, c in self.stages["index"].settings.get("catalogues", {}).items():
                src = Path(c["source"])
                if c.get("file_sha256") and src.is_file() and file_sha256(src) != c["file_sha256"]:
                    out.append(("index", f"catalogue {cid} ({src.name}) was edited after `pk2d index` used it"))
                elif c.get("file_sha256") and not src.is_file():
                    out.append(("index", f"catalogue {cid} file {src} no longer exists"))
        if "compare" in self.stages:
            s = self.stages["compare"].settings
            lokus = s.get("lokus_files") or {}
            raw = self._resolve(s.get("raw_dir"))
            if raw is not None and raw.is_dir():
                from .lokus import lokus_files

                now = {p.name: sha256_file(p) for p in lokus_files(raw)}
                if now != dict(lokus):
                    out.append(("compare", f"the desa lokus list in {raw} changed since `pk2d compare` read it"))
        return out

    def _resolve(self, rel) -> Path | None:
        if not rel:
            return None
        p = Path(rel)
        return p if p.is_absolute() else (self.processed_dir / p).resolve()

    def check(self, *, require: Iterable[str] = STAGES, deep: bool = False) -> "Run":
        """Raise :class:`StaleRunError` when :meth:`problems` finds any in the ``require`` stages (a stage
        about to run checks the stages it reads; a report checks them all); return self otherwise."""
        require = tuple(require)
        found = [(s, p) for s, p in self.problems(require=require, deep=deep) if s in require]
        if found:
            first = min(STAGES.index(s) for s, _ in found)
            todo = [s for s in STAGES[first:] if s in require or s in self.stages]
            raise StaleRunError(self.processed_dir, [p for _, p in found],
                                " && ".join(f"pk2d {s}" for s in todo) or "pk2d run")
        return self


def _read_record(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise StaleRunError(path.parent, [f"{path.name} cannot be read ({exc})"], "pk2d run") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("stages"), dict):
        raise StaleRunError(path.parent, [f"{path.name} is not a pk2d {FORMAT} run record"], "pk2d run")
    return data


def open_run(processed_dir: str | Path = paths.PROCESSED_DIR, *, run_id: str | None = None, check: bool = True,
             require: Iterable[str] = STAGES, deep: bool = False) -> Run:
    """Open the run record of ``processed_dir`` (the current one, or the pinned ``run_id``).

    ``check``: compare it with catalogue files, raw inputs, the desa lokus list and the code, and
    raise :class:`~pk2d.errors.StaleRunError` on any mismatch (``require``: the stages that must
    exist). Reading never computes.

    >>> run = open_run("data/processed")  # doctest: +SKIP
    >>> run.latest_round(), run.catalogue("ikk").id  # doctest: +SKIP
    (2, 'ikk')
    """
    pdir = Path(processed_dir).resolve()
    path = pdir / RUN_FILE if run_id is None else pdir / RUNS_DIR / f"{run_id}.json"
    if pdir.exists() and not pdir.is_dir():
        raise FileSystemError(pdir, "it is a file, not a processed-data folder (one holding run.json)", errno="ENOTDIR",
                              fix="name the folder `pk2d clean` wrote (--processed), or move the file away.")
    if not pdir.is_dir() or not path.is_file():
        if run_id is not None:
            raise StaleRunError(pdir, [f"run {run_id[:12]} is no longer kept in {pdir / RUNS_DIR}"], "pk2d report")
        raise MissingInputError(pdir / RUN_FILE, "Reading the run", fix="Run `pk2d run` (or `pk2d clean`) first.")
    data = _read_record(path)
    run = Run(pdir, data["id"], MappingProxyType({k: StageRecord.from_json(k, v) for k, v in data["stages"].items()
                                                  if k in STAGES}))
    return run.check(require=require, deep=deep) if check else run


def current_record(processed_dir: str | Path) -> dict:
    """The raw current record (``{"format", "id", "stages"}``), empty when none exists."""
    p = Path(processed_dir) / RUN_FILE
    if not p.is_file():
        return {"format": FORMAT, "id": "", "stages": {}}
    return _read_record(p)


# --- locks and pins ------------------------------------------------------------------------------
@contextlib.contextmanager
def pinned(run: Run | str | Path) -> Iterator[Run]:
    """Keep a run's generations on disk while the block runs (a report batch reads them), even if a
    stage commits a newer run meanwhile.

    Given a folder, pins its *current* run: ``run.json`` is read and the pin written under the shared
    collection lock, so no generation of it can be collected in between (then check it). Given an
    opened :class:`Run`, pins that run (whose files may be gone already: check it).
    """
    pdir = Path(run).resolve() if not isinstance(run, Run) else run.processed_dir
    pins = pdir / PINS_DIR
    pins.mkdir(parents=True, exist_ok=True)
    with gc_lock(pdir, shared=True):
        if not isinstance(run, Run):
            run = open_run(pdir, check=False)
        pin = pins / f"{run.id}.{os.getpid()}.{secrets.token_hex(4)}"
        pin.touch()
    try:
        yield run
    finally:
        with contextlib.suppress(FileNotFoundError):
            pin.unlink()


def _pinned_records(pdir: Path) -> list[dict]:
    out = []
    pins = pdir / PINS_DIR
    if not pins.is_dir():
        return out
    for p in pins.iterdir():
        parts = p.name.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        if not _alive(int(parts[1])):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            continue
        rec = pdir / RUNS_DIR / f"{parts[0]}.json"
        with contextlib.suppress(OSError, ValueError, StaleRunError):
            out.append(_read_record(rec))
    return out
