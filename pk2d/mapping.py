"""Mapping files: the columns, answers and formats of any other export, stated once in YAML.

An export of another system (BKKBN's Pendataan Keluarga, a district's own application) names its
columns and codes its answers its own way. A mapping says how they translate to the contract
(``pk2d/contract.yaml``); ``pk2d clean --mapping FILE`` applies it to every file it covers *before*
the contract's own header matching and value parsing, so every later rule (validation, rejects, row
accounting) applies unchanged. ``pk2d map --init FILE`` writes a commented template from a file's
header (:func:`pk2d.mapping_read.init_template`). The schema (only ``pk2d_mapping`` and ``tables`` are required)::

    pk2d_mapping: 1
    description: Ekspor aplikasi desa / the village application's export
    files: {keluarga: "*keluarga*", anggota: "*anggota*"}  # file-name globs it applies to (default: all)
    tables:
      keluarga:
        columns: {"No KK": no_kk, "P01": ibadah_bersama}     # source header -> contract column
        recode: {ibadah_bersama: {"1": Ya, "2": Tidak, "9": null}}  # answer -> contract answer (null: missing)
        split: {KODE_WIL: {into: [kode_provinsi, kode_kabupaten], widths: [2, 4]}}  # prefixes; or sep: "-"
        join: {tanggal_wawancara: {from: [TGL, BLN, THN], format: "{0}/{1}/{2}"}}  # or sep: " "
        constants: {putaran: 1, tahun: 2024}
      anggota: {columns: {NIK: nik}}
    formats: {decimal: ",", dates: dmy}  # wins over what pk2d decides from the values of the mapped files

Headers match like the contract's (case, spaces, dots and other punctuation ignored), answers
ignoring case and repeated spaces. Every scalar is read as text ("01" stays "01", ``yes`` stays
"yes"); ``null`` or ``~`` is missing. A header the mapping does not name is matched by the contract
as usual. ``widths`` are prefix lengths of the value with its spaces, dots and dashes removed (a
region code: 2, 4, 6, 10 digits). A recode lists answers of a column the mapping produces; an answer
it does not list passes through when the contract reads it already.

Mistakes of the mapping are :class:`~pk2d.errors.MappingError` naming the mapping file, the entry and
the fix (a target that is not a contract column of its table, a source header listed twice, a recode
of a column the mapping does not produce, a recode target the contract does not read, a bad split or
join, an unknown key); so are, when it is applied, a mapped header missing from a file and answers
that neither the recode lists nor the contract reads (listed with their counts). Nothing is dropped.

>>> from pk2d import paths
>>> m = load_mapping(paths.PACKAGE_DIR / "data" / "mappings" / "bkkbn_pk.yaml")
>>> m.tables["keluarga"].columns["P.01"], m.tables["keluarga"].recode["ibadah_bersama"]["2"]
('ibadah_bersama', 'Tidak')
"""
from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping as Map

import numpy as np
import pandas as pd
import yaml

from . import parse, rawio
from .errors import MappingError

_PLACES = {"table": ("columns", "recode", "split", "join", "constants"),
           "top": ("pk2d_mapping", "description", "files", "tables", "formats")}
FORMATS = {"decimal": (",", "."), "dates": ("dmy", "mdy")}
nh = rawio.normalise_header


class _Loader(yaml.SafeLoader):
    """Every scalar is text but null; a key listed twice is an error (plain YAML keeps the last)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _construct_map(loader, node) -> dict:
    loader.flatten_mapping(node)
    out = {}
    for k, v in node.value:
        key = loader.construct_object(k, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(None, None, "a key must be text (quote it)", k.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is listed twice", k.start_mark)
        out[key] = loader.construct_object(v, deep=True)
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _specs(table: str) -> dict[str, dict]:
    return {c["name"]: c for c in rawio.columns(table)}


def answer_key(s: pd.Series) -> pd.Series:
    """How answers are matched: stripped, lower case, single spaces.

    >>> answer_key(pd.Series([" Ya ", "TIDAK  ADA"])).tolist()
    ['ya', 'tidak ada']
    """
    return s.astype("str").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)


def understood(spec: dict, values: pd.Series) -> np.ndarray:
    """Which ``values`` the contract's parser of column ``spec`` reads on its own.

    >>> understood(_specs("keluarga")["ibadah_bersama"], pd.Series(["Ya", "2"])).tolist()
    [True, False]
    """
    if spec["type"] == "str" or values.empty:
        return np.ones(len(values), dtype=bool)
    return parse.PARSERS[spec["type"]](values.astype("str").reset_index(drop=True), spec).notna().to_numpy()


def show(value) -> str:
    """An answer as a message shows it: printable, at most 40 characters, 16+ digit runs masked."""
    text = "".join(ch for ch in str(value) if ch.isprintable())[:40]
    return json.dumps(re.sub(r"\d{16,}", lambda m: "#" * len(m.group()), text), ensure_ascii=False)


# ------------------------------------------------------------------- the schema ---
@dataclass(frozen=True)
class Split:
    """One source column cut into contract columns: prefixes of ``widths`` characters, or parts at ``sep``."""
    into: tuple[str, ...]
    widths: tuple[int, ...] = ()
    sep: str | None = None

    def parts(self, values: pd.Series) -> list[pd.Series]:
        if self.widths:
            return [rawio.on_uniques(lambda s, w=w: s.str.replace(r"[\s.\-]", "", regex=True).str.slice(0, w))(values)
                    for w in self.widths]
        n = len(self.into)
        return [rawio.on_uniques(lambda s, i=i: s.str.split(self.sep, n=n - 1, expand=True, regex=False)
                                 .reindex(columns=range(n))[i])(values) for i in range(n)]


@dataclass(frozen=True)
class Join:
    """One contract column made of source columns with a ``format`` ("{0}/{1}/{2}")."""
    sources: tuple[str, ...]
    format: str

    def value(self, parts: list[pd.Series]) -> pd.Series:
        out = pd.Series("", index=parts[0].index, dtype="str")
        for lit, name, _spec, _conv in string.Formatter().parse(self.format):
            out = out + lit
            if name is not None:
                out = out + parts[int(name)].astype("str").fillna("")
        return out.where(pd.concat(parts, axis=1).notna().any(axis=1).to_numpy())


@dataclass(frozen=True)
class TableMapping:
    """One table's part of a mapping (``source``: the mapping file, for messages)."""
    source: Path
    table: str
    columns: Map[str, str]                   # source header -> contract column
    recode: Map[str, Map[str, str | None]]   # contract column -> answer key -> contract answer
    split: Map[str, Split]                   # source header -> Split
    join: Map[str, Join]                     # contract column -> Join
    constants: Map[str, str]

    def fail(self, problem: str, fix: str, key: str | None = None) -> MappingError:
        """The error of an entry of this table (``key`` below ``tables.<table>``)."""
        return MappingError(self.source, problem, fix, key=f"tables.{self.table}" + (f".{key}" if key else ""))

    def sources(self) -> dict[str, str]:
        """Normalised source header -> its spelling in the mapping (every header the mapping reads)."""
        out = {nh(s): s for s in self.columns} | {nh(s): s for s in self.split}
        return out | {nh(s): s for j in self.join.values() for s in j.sources if nh(s) not in out}

    def feeds(self) -> dict[str, list[str]]:
        """Normalised split/join source -> the contract columns made from it."""
        out: dict[str, list[str]] = {}
        for s, sp in self.split.items():
            out.setdefault(nh(s), []).extend(sp.into)
        for col, j in self.join.items():
            for s in j.sources:
                out.setdefault(nh(s), []).append(col)
        return out

    def made(self) -> list[str]:
        """Every contract column the mapping makes (renamed, split, joined, constant)."""
        return [*self.columns.values(), *(c for sp in self.split.values() for c in sp.into), *self.join,
                *self.constants]

    def read(self, path, table: str) -> tuple[list[str], pd.DataFrame, int, dict, list[int]]:
        """Read ``path`` for :func:`pk2d.rawio.read_table` with this mapping applied
        (:func:`pk2d.mapping_read.read_mapped`)."""
        from .mapping_read import read_mapped

        return read_mapped(self, path, table)


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file (:func:`load_mapping`): read-only."""
    path: Path
    sha256: str
    description: str
    files: Map[str, tuple[str, ...]]
    tables: Map[str, TableMapping]
    formats: Map[str, str]

    @property
    def name(self) -> str:
        return self.path.name

    def table_for(self, path, table: str) -> TableMapping | None:
        """The part of the mapping that applies to file ``path`` of ``table`` (None: it does not apply)."""
        tm = self.tables.get(table)
        globs = self.files.get(table, ("*",))
        name = Path(path).name.lower()
        return tm if tm is not None and any(fnmatch.fnmatchcase(name, g.lower()) for g in globs) else None

    def record(self, applied: list[str]) -> dict:
        """What the cleaning log says of it."""
        return {"file": self.name, "sha256": self.sha256, "description": self.description,
                "applied_to": sorted(applied), "formats": dict(self.formats)}


# ------------------------------------------------------------------ validating ---
class _Check:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str, fix: str):
        raise MappingError(self.path, problem, fix, key=key or None)

    def dict(self, obj, key: str, allowed=None) -> dict:
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            self.fail(key, f"must be a mapping of keys to values (found {_kind(obj)}).",
                      "write it as `key: value` lines indented below it, or {key: value, ...}.")
        for k in obj if allowed is not None else ():
            if k not in allowed:
                near = difflib.get_close_matches(k, allowed, n=1)
                self.fail(_join(key, k), f"unknown key '{k}'" + (f"; did you mean '{near[0]}'?" if near else "."),
                          f"use only {', '.join(allowed)} here (see `pydoc pk2d.mapping`).")
        return obj

    def names(self, obj, key: str, least: int) -> list[str]:
        if not isinstance(obj, list) or len(obj) < least or not all(isinstance(x, str) and x for x in obj):
            self.fail(key, f"must be a list of at least {least} names (found {_kind(obj)}).", "write it as [a, b, c].")
        if len(set(map(nh, obj))) < len(obj):
            self.fail(key, "lists a name twice.", "list each name once.")
        return obj

    def target(self, table: str, col, key: str) -> dict:
        specs = _specs(table)
        if isinstance(col, str) and col in specs:
            return specs[col]
        canon = rawio.header_map(table).get(nh(col)) if isinstance(col, str) else None
        other = next((t for t in rawio.TABLES if t != table and isinstance(col, str) and col in _specs(t)), None)
        near = difflib.get_close_matches(str(col), list(specs), n=1)
        hint = (f"; the contract calls it '{canon}'" if canon else f"; it is a column of the {other} table" if other
                else f"; did you mean '{near[0]}'?" if near else "")
        self.fail(key, f"{show(col)} is not a column of the {table} table of the contract{hint}.",
                  f"use a column name of the {table} table (data/raw/README.md, pk2d/contract.yaml).")

    def value(self, spec: dict, value, key: str, what: str) -> None:
        if not isinstance(value, str) or not understood(spec, pd.Series([value], dtype="str"))[0]:
            accepted = (", ".join(["Ya", "Tidak"]) if spec["type"] == "yesno" else
                        ", ".join(spec["codes"]) if spec["type"] == "code" else
                        parse.TYPE_WORDS.get(spec["type"], spec["type"]))
            self.fail(key, f"{what} {show(value)} is not a value the contract reads for '{spec['name']}' "
                      f"({parse.TYPE_WORDS.get(spec['type'], spec['type'])}).", f"use one of: {accepted}"
                      + (" (or null for missing)." if what == "recode target" else "."))


def _kind(obj) -> str:
    return "nothing" if obj is None else f"'{obj}'" if isinstance(obj, str) else type(obj).__name__


def _join(base: str, key: str) -> str:
    if not base:
        return key
    return f"{base}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{base}[{json.dumps(key)}]"


def _table(ck: _Check, path: Path, table: str, spec) -> TableMapping:
    base = f"tables.{table}"
    spec = ck.dict(spec, base, _PLACES["table"])
    made: dict[str, str] = {}

    def produce(col, key):
        ck.target(table, col, key)
        if col in made:
            ck.fail(key, f"the column '{col}' is made twice: by {made[col]} and by {key}.", "keep one of them.")
        made[col] = key
    columns, seen = ck.dict(spec.get("columns"), f"{base}.columns"), {}
    for src, col in columns.items():
        key = _join(f"{base}.columns", src)
        if not nh(src):
            ck.fail(key, "a source header needs a letter or digit.", "write the header as the file has it.")
        if nh(src) in seen:
            ck.fail(key, f"the source headers {show(seen[nh(src)])} and {show(src)} are the same header (case, "
                    "spaces and dots are ignored).", "list each header of the file once.")
        seen[nh(src)] = src
        produce(col, key)
    splits, split_seen = {}, {}
    for src, sp in ck.dict(spec.get("split"), f"{base}.split").items():
        key = _join(f"{base}.split", src)
        if nh(src) in split_seen or not nh(src):
            ck.fail(key, "this source header is split twice (or has no letter or digit).", "split it once.")
        split_seen[nh(src)] = src
        sp = ck.dict(sp, key, ("into", "widths", "sep"))
        into = ck.names(sp.get("into"), f"{key}.into", 2)
        for col in into:
            produce(col, f"{key}.into")
        if ("widths" in sp) == ("sep" in sp):
            ck.fail(key, "a split needs exactly one of widths (prefix lengths) or sep (a separator).",
                    "e.g. {into: [kode_provinsi, kode_kabupaten], widths: [2, 4]} or {into: [a, b], sep: \"-\"}.")
        if "widths" in sp:
            w = sp["widths"]
            ok = isinstance(w, list) and len(w) == len(into) and all(isinstance(x, str) and x.isdigit() for x in w)
            widths = tuple(int(x) for x in w) if ok else ()
            if not ok or widths[0] < 1 or any(b <= a for a, b in zip(widths, widths[1:])):
                ck.fail(f"{key}.widths", f"widths must be {len(into)} increasing prefix lengths, one per column "
                        "of into.", "e.g. [2, 4, 6, 10] for provinsi, kabupaten, kecamatan and desa codes.")
            splits[src] = Split(tuple(into), widths=widths)
        else:
            if not isinstance(sp["sep"], str) or not sp["sep"]:
                ck.fail(f"{key}.sep", "sep must be a non-empty text.", "e.g. sep: \"-\" (quote it).")
            splits[src] = Split(tuple(into), sep=sp["sep"])
    joins = {}
    for col, jn in ck.dict(spec.get("join"), f"{base}.join").items():
        key = _join(f"{base}.join", col)
        produce(col, key)
        jn = ck.dict(jn, key, ("from", "format", "sep"))
        srcs = ck.names(jn.get("from"), f"{key}.from", 1)
        if "format" in jn and "sep" in jn:
            ck.fail(key, "a join takes format or sep, not both.", "keep one of them.")
        sep = jn.get("sep", " ")
        fmt = jn.get("format", (sep or "").replace("{", "{{").replace("}", "}}").join(
            f"{{{i}}}" for i in range(len(srcs))))
        try:
            fields = [(n, s, c) for _lit, n, s, c in string.Formatter().parse(str(fmt)) if n is not None]
        except ValueError as exc:
            fields = [("x", str(exc), None)]
        if not isinstance(fmt, str) or any(not n.isdigit() or int(n) >= len(srcs) or s or c for n, s, c in fields):
            ck.fail(f"{key}.format", f"the format must use only the places {{0}}..{{{len(srcs) - 1}}} of its "
                    f"{len(srcs)} source(s), without format specs.", 'e.g. format: "{0}/{1}/{2}".')
        unused = [s for i, s in enumerate(srcs) if str(i) not in {n for n, _s, _c in fields}]
        if unused:
            ck.fail(f"{key}.format", f"the source {show(unused[0])} is not used in the format.",
                    "use every source of from in the format, or remove it from from.")
        joins[col] = Join(tuple(srcs), fmt)
    constants = {}
    for col, v in ck.dict(spec.get("constants"), f"{base}.constants").items():
        key = _join(f"{base}.constants", col)
        produce(col, key)
        sp = _specs(table)[col]
        if sp.get("personal"):
            ck.fail(key, f"'{col}' is personal data; it cannot be a constant.", "remove it.")
        ck.value(sp, v, key, "the constant")
        constants[col] = v
    recodes = {}
    for col, rules in ck.dict(spec.get("recode"), f"{base}.recode").items():
        key = _join(f"{base}.recode", col)
        sp = ck.target(table, col, key)
        if col not in made or col in constants:
            ck.fail(key, f"recodes '{col}', which the mapping does not make from a header of the file.",
                    f"map its header under columns (\"HEADER\": {col}), or remove the recode.")
        if sp.get("personal") or sp["type"] == "id16":
            ck.fail(key, f"'{col}' is personal data; pk2d does not recode it.", "remove the recode.")
        rules, out = ck.dict(rules, key), {}
        if not rules:
            ck.fail(key, "the recode lists no answer.", "list answers as \"code\": contract answer, or remove it.")
        for answer, target in rules.items():
            k = answer_key(pd.Series([answer])).iloc[0]
            akey = _join(key, answer)
            if k in rawio.MISSING:
                ck.fail(akey, f"the answer {show(answer)} is read as missing already.", "remove it.")
            if k in out:
                ck.fail(akey, f"the answer {show(answer)} is listed twice (case and spaces are ignored).",
                        "list it once.")
            if target is not None:
                ck.value(sp, target, akey, "recode target")
            out[k] = None if target is None else target.strip()
        recodes[col] = MappingProxyType(out)
    return TableMapping(path, table, MappingProxyType(dict(columns)), MappingProxyType(recodes),
                        MappingProxyType(splits), MappingProxyType(joins), MappingProxyType(constants))


def load_mapping(path) -> Mapping:
    """Read and validate a mapping file; raises :class:`~pk2d.errors.MappingError` naming the entry.

    >>> from pk2d import paths
    >>> load_mapping(paths.PACKAGE_DIR / "data" / "mappings" / "bkkbn_pk.yaml").name
    'bkkbn_pk.yaml'
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise MappingError(path, "this is a folder, not a mapping file." if path.is_dir() else
                           "the mapping file does not exist.",
                           "name a mapping file (.yaml); `pk2d map --init EXPORT_FILE` writes one to start from.")
    data = path.read_bytes()
    try:
        doc = yaml.load(data.decode("utf-8-sig"), Loader=_Loader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError:
        raise MappingError(path, "the file is not UTF-8 text.", "save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MappingError(path, f"not valid YAML{where}: {getattr(exc, 'problem', None) or 'unreadable'}.",
                           "correct the YAML there (indentation with spaces, `key: value`, quotes around "
                           "headers with : or #).") from None
    ck = _Check(path)
    doc = ck.dict(doc, "", _PLACES["top"])
    if doc.get("pk2d_mapping") != "1":
        ck.fail("pk2d_mapping", "not a pk2d mapping (version 1): its first line must be `pk2d_mapping: 1`.",
                "start the file with `pk2d_mapping: 1`, or write one with `pk2d map --init EXPORT_FILE`.")
    tables = ck.dict(doc.get("tables"), "tables", rawio.TABLES)
    if not tables:
        ck.fail("tables", "the mapping has no table.", "add tables: keluarga: ... and/or anggota: ...")
    files = {}
    for t, globs in ck.dict(doc.get("files"), "files", rawio.TABLES).items():
        globs = [globs] if isinstance(globs, str) else globs
        if not isinstance(globs, list) or not globs or not all(isinstance(g, str) and g for g in globs):
            ck.fail(f"files.{t}", "must be a file-name pattern or a list of them.", 'e.g. "*keluarga*".')
        if t not in tables:
            ck.fail(f"files.{t}", f"names files for the table {t}, which the mapping does not map.",
                    f"add tables: {t}: ..., or remove files.{t}.")
        files[t] = tuple(globs)
    formats = ck.dict(doc.get("formats"), "formats", tuple(FORMATS))
    for k, v in formats.items():
        if v not in FORMATS[k]:
            ck.fail(f"formats.{k}", f"{show(v)} is not one of {', '.join(map(show, FORMATS[k]))}.",
                    f"write {k}: {json.dumps(FORMATS[k][0])} or {json.dumps(FORMATS[k][1])}.")
    desc = doc.get("description") or ""
    if not isinstance(desc, str):
        ck.fail("description", "must be text.", "write it on one line, or as a folded block (description: >-).")
    return Mapping(path.resolve(), hashlib.sha256(data).hexdigest(), " ".join(desc.split()),
                   MappingProxyType(files), MappingProxyType({t: _table(ck, path, t, s) for t, s in tables.items()}),
                   MappingProxyType(dict(formats)))
