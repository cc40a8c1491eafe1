"""The clean stage, group by group: exports that share no identifier are cleaned apart, as tasks.

Every rule of :mod:`pk2d.cleaning` that looks at more than one row compares rows by
an identifier or a region code (No. KK, NIK, desa, kecamatan, kabupaten; rows without
an id by their whole content: :func:`pk2d.cleaning.link_keys`). So the file pairs of
the raw folder can be cleaned in groups, each group on its own (one task of the
engine, :mod:`pk2d.engine`, with memory bounded by the group), and the result is the
one cleaning them all together would give, **provided no key occurs in two groups**.

That is checked, not assumed: the groups start as the pairs whose names differ only in
their year and round words (``..._6302_2023_putaran1`` and ``..._6302_2024_putaran2``:
one kabupaten's rounds); each task returns the hashes of its keys, and any groups that
share one are merged and cleaned again together, until none do. A kabupaten's
partition of the outputs therefore comes from exactly one group: each task writes its
parts into a staging folder of its own, and only the final groups' parts are moved into
the output (each checked to be there, so a worker that does not see the folder is
caught), :mod:`pk2d.partitions`; the rejects are sorted and the log's entries put in the
files' order as for one process. Whatever the engine, the same groups are cleaned the
same way, so the outputs are the same files.

A sample's design columns (weights, strata, PSUs) are checked over the whole of each
round, here, once every group is back (:func:`pk2d.cleaning._check_designs`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import io as pio
from . import partitions, paths, rawio

log = logging.getLogger(__name__)
_ROUND_WORD = re.compile(r"^(?:19|20)\d\d$|^(?:putaran|round|ronde|p|r)\d{1,2}$")


@dataclass(frozen=True)
class CleanResult:
    """What :func:`clean` wrote to ``out_dir``: the log, and readers of the tables (each read when asked)."""

    out_dir: Path
    log: dict

    @property
    def families(self) -> pd.DataFrame:
        return partitions.read(self.out_dir / "families")

    @property
    def members(self) -> pd.DataFrame:
        return partitions.read(self.out_dir / "members")

    @property
    def rejects(self) -> pd.DataFrame:
        return pd.read_csv(self.out_dir / "rejects.csv", dtype={"row": "int64"})

    def summary(self) -> str:
        """Row accounting as readable text (Bahasa Indonesia, English in brackets)."""
        from .cleaning import summary_text

        return summary_text(self.log)


def first_groups(pairs) -> list[list[int]]:
    """The pairs (indexes, in order) whose stems are the same once year and round words are dropped.

    >>> from types import SimpleNamespace as P
    >>> first_groups([P(stem="x_6302_2023_putaran1"), P(stem="x_6309_2023_putaran1"), P(stem="x_6302_2024_putaran2")])
    [[0, 2], [1]]
    """
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        words = [w for w in re.split(r"[^0-9a-z]+", str(p.stem).lower()) if w and not _ROUND_WORD.match(w)]
        groups.setdefault("_".join(words), []).append(i)
    return list(groups.values())


def merged(groups: list[list[int]], links: list[np.ndarray]) -> list[list[int]]:
    """``groups`` with every two that share a key (``links[g]``: group g's key hashes) made one (in the
    order of their first pair).

    >>> import numpy as np
    >>> merged([[0], [1], [2]], [np.array([1, 2], np.uint64), np.array([3], np.uint64), np.array([2], np.uint64)])
    [[0, 2], [1]]
    """
    parent = list(range(len(groups)))

    def root(g):
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    if links:
        keys = np.concatenate(links)
        owner = np.repeat(np.arange(len(links)), [len(k) for k in links])
        order = np.argsort(keys, kind="stable")
        keys, owner = keys[order], owner[order]
        same = np.flatnonzero(keys[1:] == keys[:-1])
        for a, b in zip(owner[same], owner[same + 1]):
            ra, rb = root(int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    out: dict[int, list[int]] = {}
    for g in range(len(groups)):
        out.setdefault(root(g), []).extend(groups[g])
    return [sorted(v) for v in sorted(out.values(), key=min)]


def clean_group(task: dict) -> dict:
    """One group of pairs (a task): :func:`pk2d.cleaning.clean_pairs`, its kabupaten's partitions written
    under ``task["staging"]`` (a folder of the group's own); returns the rest: rejects, log entries, key
    hashes, design columns, and the part files with their sizes (checked by the command, which may run
    on another machine)."""
    from .cleaning import clean_pairs
    from .mapping import load_mapping

    mapping = load_mapping(task["mapping"]) if task["mapping"] else None
    res = clean_pairs(task["pairs"], task["raw_dir"], key=task["key"], today=task["today"], mapping=mapping)
    families, members = res.pop("families"), res.pop("members")
    keys = members[["putaran", "id_keluarga"]].merge(  # a member's partition: their family's kabupaten
        families[["putaran", "id_keluarga", *partitions.PARTITION_BY]], how="left", on=["putaran", "id_keluarga"])
    res["parts"] = {}
    for table, frame, k in (("families", families, None), ("members", members, keys)):
        folder = Path(task["staging"]) / table
        written, schema = partitions.write_parts(frame, folder, keys=k)
        res["parts"][table] = ({r.as_posix(): (folder / r).stat().st_size for r in written}, schema)
    res["rounds"] = {int(r): int(n) for r, n in families["putaran"].value_counts().items()}
    res["group"] = task["group"]
    return res


def clean(raw_dir=paths.RAW_DIR, out_dir=paths.PROCESSED_DIR, *, key: bytes | None = None, today=None,
          mapping=None, engine=None) -> CleanResult:
    """:func:`pk2d.cleaning.clean`: the groups of pairs as tasks of ``engine`` (default: this process)."""
    import hashlib
    import shutil
    import tempfile

    from .cleaning import load_key
    from .engine import LocalEngine

    today = pd.Timestamp(today or dt.date.today()).normalize()
    if mapping is not None and not hasattr(mapping, "table_for"):
        from .mapping import load_mapping

        mapping = load_mapping(mapping)
    pairs = rawio.discover(raw_dir)
    if mapping is not None and not any(mapping.table_for(getattr(p, t), t) for p in pairs for t in rawio.TABLES
                                       if getattr(p, "tool", None) is None):  # not to a field tool's export
        from .errors import MappingError

        raise MappingError(mapping.path, f"it applies to none of the exports in {raw_dir} (tables "
                           f"{', '.join(mapping.tables)}; files {dict(mapping.files) or 'all'}).",
                           "correct its files: patterns (globs on the file name), or clean without --mapping.")
    key = load_key() if key is None else key.encode() if isinstance(key, str) else bytes(key)
    engine = engine or LocalEngine()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tmp = {t: stack.enter_context(pio.atomic_dir(out_dir / t)) for t in ("families", "members")}
        staging = Path(tempfile.mkdtemp(prefix=".groups.", suffix=".tmp", dir=out_dir))
        stack.callback(shutil.rmtree, staging, True)
        base = {"raw_dir": str(raw_dir), "key": key, "today": today,
                "mapping": str(mapping.path) if mapping is not None else None}

        def tasks(groups):
            return [{**base, "pairs": [pairs[i] for i in g], "group": g,
                     "staging": str(staging / hashlib.sha256(repr(g).encode()).hexdigest()[:16])} for g in groups]

        groups = first_groups(pairs)
        results = engine.map(clean_group, tasks(groups))
        while True:
            joined = merged(groups, [r["links"] for r in results])
            if len(joined) == len(groups):
                break
            again = [g for g in joined if g not in groups]
            log.info("clean: %d group(s) share identifiers or region codes with another; cleaned again together",
                     sum(len(g) for g in again))
            done = {tuple(r["group"]): r for r in results}
            redo = dict(zip(map(tuple, again), engine.map(clean_group, tasks(again))))
            groups, results = joined, [redo.get(tuple(g)) or done[tuple(g)] for g in joined]
        for task, res in zip(tasks(groups), results):  # only the final groups' parts become the output
            _adopt(Path(task["staging"]), res["parts"], tmp)
        for table in ("families", "members"):
            partitions.write_schema(tmp[table], [r["parts"][table][1] for r in results], own=table == "families")
        _check_designs_of(results, pairs)
        rejects, log_data = _combine(results, pairs, groups, today, mapping)
        for name, write in (("rejects.csv", lambda p: rejects.to_csv(p, index=False, encoding="utf-8")),
                            ("cleaning_log.json", lambda p: Path(p).write_text(
                                json.dumps(log_data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"))):
            write(stack.enter_context(pio.atomic_path(out_dir / name)))
    return CleanResult(out_dir, log_data)


def _adopt(staging: Path, parts: dict, tmp: dict) -> None:
    """Move a group's part files from its staging folder into the output tables, checking each is there
    with the size its task wrote (a worker that does not share the folder wrote them elsewhere)."""
    import os

    from .engine import check_written

    for table, (files, _schema) in parts.items():
        check_written(staging / table, files)
        for rel in files:
            src, dst = staging / table / rel, tmp[table] / rel
            if dst.exists():
                raise RuntimeError(f"pk2d bug: two groups of the clean stage wrote {table}/{rel}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)


def _check_designs_of(results: list[dict], pairs) -> None:
    """A sample's design columns describe one design per round, over every group (in the files' order):
    :func:`pk2d.cleaning._check_designs`; a round whose families have design values in some files and
    none in others is refused, naming both."""
    from .cleaning import _check_designs
    from .errors import InputFileError

    order = {p.keluarga.name: i for i, p in enumerate(pairs)}
    design = [r["design"] for r in results if r["design"] is not None]
    if not design:
        return
    d = pd.concat(design, ignore_index=True)
    d = d.iloc[np.lexsort((d["_row"].to_numpy(), d["_file"].map(order).fillna(-1).to_numpy()))]
    with_design = set(int(r) for r in d["putaran"].unique())
    for r in results:
        missing = sorted(set(r["rounds"]) & with_design) if r["design"] is None else []
        if missing:
            rnd = missing[0]
            some = sorted(set(d.loc[d["putaran"] == rnd, "_file"]))
            none = sorted(e["file"] for e in r["inputs"] if e["table"] == "keluarga" and e.get("putaran") == rnd)
            raise InputFileError(", ".join(none), f"round {rnd}: these families have no design values (bobot, "
                                 f"strata, psu...), while those of {', '.join(some)} have them: a round is one "
                                 "design.", column="bobot",
                                 fix="give every family of the round its design values (a sample), or none (a "
                                     "census)")
    _check_designs(d, d["_file"].to_numpy(), d["_row"].to_numpy())


def log_record(inputs: list[dict], rules: dict, accounting: dict, today, mapping: dict | None = None) -> dict:
    """The cleaning log: the ``inputs`` entries (one per file), the rows per rule broken (most first, then by
    name), the row ``accounting`` and the mapping applied (:meth:`pk2d.mapping.Mapping.record`), if any. No
    wall-clock time: rerunning on the same files writes the same log."""
    import importlib.metadata

    from .cleaning import CLEAN_VERSION

    try:
        pk2d_version = importlib.metadata.version("pk2d")
    except importlib.metadata.PackageNotFoundError:  # a checkout that is not installed
        pk2d_version = "unknown"
    return {"pk2d_clean_version": CLEAN_VERSION, "pk2d_version": pk2d_version,
            "contract_version": rawio.load_contract().get("version"),
            **({"mapping": mapping} if mapping else {}),
            "today": today.date().isoformat(), "inputs": inputs,
            "rules": {t: dict(sorted(r.items(), key=lambda kv: (-kv[1], kv[0]))) for t, r in rules.items()},
            "accounting": accounting,
            "unknown_columns": {x["file"]: x["unknown_columns"] for x in inputs if x["unknown_columns"]}}


def _combine(results, pairs, groups, today, mapping):
    """The rejects (sorted) and the log of all groups, in the order of the pairs."""
    from .cleaning import REJECT_COLUMNS as reject_columns

    rejects = pd.concat([r["rejects"] for r in results], ignore_index=True).sort_values(
        reject_columns[:5], ignore_index=True)
    entries = {}
    for g, r in zip(groups, results):
        for k, i in enumerate(g):  # two entries (families, members) per pair, in the group's order
            entries[i] = r["inputs"][2 * k: 2 * k + 2]
    inputs = [e for i in range(len(pairs)) for e in entries[i]]
    rules: dict = {}
    accounting: dict = {}
    for r in results:
        for t, counts in r["rules"].items():
            for rule, n in counts.items():
                rules.setdefault(t, {}).setdefault(rule, 0)
                rules[t][rule] += n
        for t, acc in r["accounting"].items():
            for k, v in acc.items():
                accounting.setdefault(t, {}).setdefault(k, 0)
                accounting[t][k] += v
    for t in ("keluarga", "anggota"):
        rules.setdefault(t, {})
    applied = [e["file"] for e in inputs if e["file"] in {a for r in results for a in r["applied"]}]
    return rejects, log_record(inputs, rules, accounting, today,
                               mapping.record(applied) if mapping is not None else None)
