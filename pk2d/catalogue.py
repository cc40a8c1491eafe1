"""Indicator catalogues as data: load, validate, classify.

A catalogue (``pk2d/catalogues/ikk.yaml``, ``ibangga.yaml`` or any YAML file
with the same shape) holds everything the official documents leave open:
indicators and their rules, weights, the not-applicable rule, the aggregation
order, category cut-offs and labels, and which indicators are ``sensitive``
(``true``/``false``, default false: small counts of them are never published,
:mod:`pk2d.report.disclosure`). :class:`Catalogue` is immutable;
:meth:`Catalogue.with_settings` returns a changed copy, so a whole index can be
regenerated with one setting changed.

>>> cat = load_catalogue("ikk")
>>> len(cat.indicators), [len(cat.indicators_of(d.id)) for d in cat.dimensions]
(29, [3, 6, 8, 6, 6])
>>> [i.id for i in cat.indicators if i.sensitive]
['E8', 'P1', 'P5', 'P6', 'B6']
>>> classify(73.98)
'Cukup Responsif Gender dan Hak Anak'
>>> cat.with_settings(aggregation_order="indicator_first").settings["aggregation_order"]
'indicator_first'
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import paths
from .errors import CatalogueError
from .io import freeze as _freeze
from .io import thaw as _thaw

OPS = ("eq", "ne", "in", "not_in", "ge", "gt", "le", "lt")
SETTINGS = {
    "aggregation_order": ("family_first", "indicator_first"),
    "aggregation_method": ("arithmetic", "geometric"),
    "not_applicable": ("reweight", "zero", "full"),
}
WEIGHT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Dimension:
    id: str
    name_id: str
    name_en: str
    weight: float


@dataclass(frozen=True)
class Indicator:
    id: str
    dimension: str
    name_id: str
    name_en: str
    rule: Mapping[str, Any]
    applies: Mapping[str, Any] | None
    direction: str
    weight: float
    agency: str
    source: str
    target: float = 80.0  #: % of the applicable families that should meet it
    target_source: str = "pk2d_default"  #: key of ``Catalogue.target_sources``
    #: a small count of families not meeting (or meeting) it could expose them (violence, child
    #: marriage, disability...): below ``pk2d.defaults.MIN_CELL`` it is never published
    sensitive: bool = False


@dataclass(frozen=True)
class Category:
    code: int
    lower: float
    label_id: str
    label_en: str
    lower_inclusive: bool = True

    def label(self, lang: str = "id") -> str:
        return self.label_en if lang == "en" else self.label_id


@dataclass(frozen=True)
class Catalogue:
    """An indicator catalogue; build with :func:`load_catalogue`."""

    id: str
    version: str
    name_id: str
    name_en: str
    note_id: str
    note_en: str
    official_list_public: bool
    parameters: Mapping[str, Any]
    settings: Mapping[str, str]
    dimensions: tuple[Dimension, ...]
    indicators: tuple[Indicator, ...]
    categories: Mapping[str, tuple[Category, ...]]
    source: str
    sha256: str
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    target_sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def target_source_text(self, indicator: "Indicator", lang: str = "id") -> str:
        """Where an indicator's target comes from, in ``lang``."""
        src = self.target_sources.get(indicator.target_source, {})
        return src.get("en" if lang == "en" else "id", indicator.target_source)

    def indicators_of(self, dimension: str) -> tuple[Indicator, ...]:
        return tuple(i for i in self.indicators if i.dimension == dimension)

    def name(self, lang: str = "id") -> str:
        return self.name_en if lang == "en" else self.name_id

    def with_settings(self, **changes: Any) -> "Catalogue":
        """A copy with settings, ``parameters`` or ``dimension_weights`` changed, re-validated.

        >>> load_catalogue("ikk").with_settings(not_applicable="zero").settings["not_applicable"]
        'zero'
        """
        raw = _thaw(self.raw)
        for key, value in changes.items():
            if key == "parameters":
                raw["parameters"] = {**raw.get("parameters", {}), **value}
            elif key == "dimension_weights":
                for d in raw["dimensions"]:
                    d["weight"] = value[d["id"]]
            elif key == "categories":
                raw["categories"] = value
            else:
                raw.setdefault("settings", {})[key] = value
        changed = _build(raw, self.source + " (modified)")
        return replace(changed, sha256=_hash_obj(raw))

    def check_columns(self, columns: Iterable[str]) -> None:
        """Fail when a rule names a column neither in the data nor a registered feature."""
        from .features import feature_names

        known = set(columns) | set(feature_names())
        for ind in self.indicators:
            for part, rule in (("rule", ind.rule), ("applies", ind.applies)):
                for col in _rule_columns(rule):
                    if col not in known:
                        raise CatalogueError(
                            self.source,
                            f"{part} names column '{col}', which the cleaned data does not have "
                            "and which is not a registered feature.",
                            item=ind.id,
                            fix="Use a column of pk2d/contract.yaml or a feature listed by "
                            "pk2d.features.feature_names(), or add the column to the contract.",
                        )


def _hash_obj(obj) -> str:
    return hashlib.sha256(json.dumps(_thaw(obj), sort_keys=True, default=str).encode()).hexdigest()


def _rule_columns(rule) -> list[str]:
    if not rule:
        return []
    if "column" in rule:
        return [rule["column"]]
    if "not" in rule:
        return _rule_columns(rule["not"])
    key = "all" if "all" in rule else "any"
    return [c for r in rule.get(key, []) for c in _rule_columns(r)]


def _check_rule(rule, src, item, params):
    if not isinstance(rule, Mapping):
        raise CatalogueError(src, f"a rule must be a mapping, got {rule!r}.", item=item)
    if "column" in rule:
        if rule.get("op") not in OPS:
            raise CatalogueError(src, f"unknown operator {rule.get('op')!r}.", item=item,
                                 fix=f"Use one of {', '.join(OPS)}.")
        if "value" not in rule:
            raise CatalogueError(src, "a rule needs a 'value'.", item=item)
        value = rule["value"]
        if isinstance(value, str) and value.startswith("$") and value[1:] not in params:
            raise CatalogueError(src, f"rule refers to parameter {value}, which is not defined.",
                                 item=item, fix="Add it under 'parameters:' in the catalogue.")
        if rule["op"] in ("in", "not_in") and not isinstance(value, list):
            raise CatalogueError(src, f"operator {rule['op']} needs a list value.", item=item)
        return
    for key in ("all", "any"):
        if key in rule:
            if not rule[key]:
                raise CatalogueError(src, f"'{key}' needs at least one rule.", item=item)
            for r in rule[key]:
                _check_rule(r, src, item, params)
            return
    if "not" in rule:
        return _check_rule(rule["not"], src, item, params)
    raise CatalogueError(src, f"rule {dict(rule)} has none of column/all/any/not.", item=item)


def _categories(raw, src) -> dict[str, tuple[Category, ...]]:
    out = {}
    for unit in ("area", "family"):
        items = raw.get("categories", {}).get(unit)
        if not items:
            raise CatalogueError(src, f"no categories for unit '{unit}'.", item="categories",
                                 fix="Add categories.area and categories.family with lower bounds.")
        cats = tuple(Category(int(c["code"]), float(c["lower"]), c["label_id"], c["label_en"],
                              bool(c.get("lower_inclusive", True))) for c in items)
        lowers = [c.lower for c in cats]
        if lowers[0] != 0 or any(b <= a for a, b in zip(lowers, lowers[1:])) or lowers[-1] > 100:
            raise CatalogueError(
                src, f"category cut-offs for '{unit}' overlap or leave gaps: lower bounds {lowers}.",
                item="categories", fix="Start at 0 and give strictly increasing lower bounds up to 100.")
        out[unit] = cats
    return out


def _build(raw: Mapping[str, Any], src: str) -> Catalogue:
    params = dict(raw.get("parameters") or {})
    settings = {**{k: v[0] for k, v in SETTINGS.items()}, **(raw.get("settings") or {})}
    for key, value in settings.items():
        if key not in SETTINGS or value not in SETTINGS[key]:
            allowed = SETTINGS.get(key)
            raise CatalogueError(src, f"setting {key}={value!r} is not valid.", item="settings",
                                 fix=f"Allowed: {allowed}" if allowed else f"Known settings: {list(SETTINGS)}")
    dims = tuple(Dimension(d["id"], d["name_id"], d["name_en"], float(d["weight"]))
                 for d in raw.get("dimensions") or [])
    if not dims:
        raise CatalogueError(src, "no dimensions defined.", item="dimensions")
    total = sum(d.weight for d in dims)
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise CatalogueError(src, f"dimension weights add up to {total:.6g}, not 1.", item="dimensions",
                             fix="Make the dimension weights add up to 1.")
    agencies = {a["code"] for a in load_agencies()}
    dim_ids = [d.id for d in dims]
    seen: set[str] = set()
    items = list(raw.get("indicators") or [])
    indicators = []
    for it in items:
        iid = str(it.get("id"))
        if iid in seen:
            raise CatalogueError(src, "indicator id used twice.", item=iid)
        seen.add(iid)
        if it.get("dimension") not in dim_ids:
            raise CatalogueError(src, f"dimension {it.get('dimension')!r} is not defined.", item=iid,
                                 fix=f"Use one of {dim_ids}.")
        if it.get("direction", "positive") not in ("positive", "negative"):
            raise CatalogueError(src, "direction must be positive or negative.", item=iid)
        if not isinstance(it.get("sensitive", False), bool):
            raise CatalogueError(src, f"sensitive must be true or false, got {it.get('sensitive')!r}.", item=iid,
                                 fix="Write sensitive: true for an indicator whose small counts could expose "
                                     "families (violence, child marriage, disability...), or leave it out (false).")
        if it.get("agency") not in agencies:
            raise CatalogueError(src, f"agency {it.get('agency')!r} is not in agencies.yaml.", item=iid,
                                 fix="Add the agency to pk2d/catalogues/agencies.yaml or fix the code.")
        _check_rule(it.get("rule"), src, iid, params)
        if it.get("applies") is not None:
            _check_rule(it["applies"], src, iid, params)
        indicators.append(it)
    for d in dims:
        members = [it for it in indicators if it["dimension"] == d.id]
        if not members:
            raise CatalogueError(src, "dimension has no indicators.", item=d.id,
                                 fix="Add indicators to it or remove it (and re-balance the weights).")
        given = [it.get("weight") for it in members]
        if all(w is None for w in given):
            for it in members:
                it["_w"] = 1 / len(members)
        elif any(w is None for w in given):
            raise CatalogueError(src, "some indicators have a weight and others not.", item=d.id,
                                 fix="Give every indicator of the dimension a weight, or none (equal weights).")
        else:
            s = sum(float(w) for w in given)
            if abs(s - 1) > WEIGHT_TOLERANCE:
                raise CatalogueError(src, f"indicator weights add up to {s:.6g}, not 1.", item=d.id,
                                     fix="Make the indicator weights of each dimension add up to 1.")
            for it in members:
                it["_w"] = float(it["weight"])
    sources = dict(raw.get("target_sources") or {})
    sources.setdefault("pk2d_default", {"id": "Bawaan pk2d: 80% (batas tanda ● baik)",
                                        "en": "pk2d default: 80% (the ● good mark)"})
    default = raw.get("default_target") or {"value": 80, "source": "pk2d_default"}
    targets = {}
    for it in indicators:
        t = it.get("target") or default
        try:
            value = float(t["value"])
        except (KeyError, TypeError, ValueError):
            raise CatalogueError(src, f"target {t!r} is not of the form {{value: 0-100, source: key}}.",
                                 item=str(it["id"]), fix="e.g. target: {value: 100, source: rpjmn_akta}") from None
        if not 0 <= value <= 100:
            raise CatalogueError(src, f"target {value} is not a percentage (0-100).", item=str(it["id"]),
                                 fix="give the percentage of applicable families that should meet the indicator.")
        if t.get("source") not in sources:
            raise CatalogueError(src, f"target source {t.get('source')!r} is not in target_sources.",
                                 item=str(it["id"]), fix=f"use one of {', '.join(sorted(sources))} or add it.")
        targets[str(it["id"])] = (value, str(t["source"]))
    inds = tuple(Indicator(str(it["id"]), it["dimension"], it["name_id"], it["name_en"],
                           _freeze(it["rule"]), _freeze(it.get("applies")), it.get("direction", "positive"),
                           it.pop("_w"), it["agency"], it.get("source", ""), *targets[str(it["id"])],
                           bool(it.get("sensitive", False)))
                 for it in indicators)
    return Catalogue(
        id=str(raw.get("id", Path(src).stem)), version=str(raw.get("version", "")),
        name_id=raw.get("name_id", ""), name_en=raw.get("name_en", ""),
        note_id=raw.get("note_id", ""), note_en=raw.get("note_en", ""),
        official_list_public=bool(raw.get("official_list_public", False)),
        parameters=_freeze(params), settings=_freeze(settings), dimensions=dims, indicators=inds,
        categories=_freeze(_categories(raw, src)), source=src, sha256=_hash_obj(raw), raw=_freeze(raw),
        target_sources=_freeze(sources),
    )


def resolve(name_or_path: str | Path) -> Path:
    """``"ikk"`` / ``"ibangga"`` -> the packaged file; anything else is a path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    return paths.CATALOGUE_DIR / f"{name_or_path}.yaml"


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime: float) -> Catalogue:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(path, f"is not valid YAML ({exc}).") from None
    if not isinstance(raw, dict):
        raise CatalogueError(path, "does not hold a catalogue mapping.")
    cat = _build(raw, path)
    return replace(cat, sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())


def load_catalogue(name_or_path: str | Path = "ikk") -> Catalogue:
    """Load and validate a catalogue by name (``ikk``, ``ibangga``) or path.

    >>> load_catalogue("ibangga").settings["not_applicable"]
    'reweight'
    """
    if isinstance(name_or_path, Catalogue):
        return name_or_path
    path = resolve(name_or_path)
    if not path.exists():
        raise CatalogueError(path, "file not found.",
                             fix="Use 'ikk', 'ibangga' or the path of a catalogue YAML file.")
    return _load_cached(str(path), path.stat().st_mtime)


def file_sha256(path: str | Path) -> str:
    """sha256 of a catalogue file's bytes (what :attr:`Catalogue.sha256` is for a file-loaded catalogue)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def to_record(cat: Catalogue) -> dict:
    """What the run record keeps of a catalogue: its whole content, source and hashes.

    >>> rec = to_record(load_catalogue("ikk"))
    >>> from_record(rec) == load_catalogue("ikk"), sorted(rec)
    (True, ['content', 'file_sha256', 'id', 'sha256', 'source', 'version'])
    """
    src = Path(cat.source)
    from_file = src.is_file() and file_sha256(src) == cat.sha256
    return {"id": cat.id, "version": cat.version, "source": str(cat.source), "sha256": cat.sha256,
            "file_sha256": cat.sha256 if from_file else None, "content": _thaw(cat.raw)}


def from_record(record: Mapping[str, Any]) -> Catalogue:
    """The catalogue a run recorded (:func:`to_record`), rebuilt and validated from its content."""
    return replace(_build(_thaw(record["content"]), str(record["source"])), sha256=str(record["sha256"]))


@lru_cache(maxsize=1)
def load_agencies() -> tuple[dict, ...]:
    """The agency table (``pk2d/catalogues/agencies.yaml``), editable by a district."""
    data = yaml.safe_load((paths.CATALOGUE_DIR / "agencies.yaml").read_text(encoding="utf-8"))
    return tuple(data["agencies"])


def agency_name(code: str, lang: str = "id") -> str:
    for a in load_agencies():
        if a["code"] == code:
            return a["name_en"] if lang == "en" else a["name_id"]
    return code


def category_of(value: float, categories: tuple[Category, ...]) -> Category | None:
    """The category a value falls in (``None`` for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    found = categories[0]
    for cat in categories[1:]:
        if value > cat.lower or (value == cat.lower and cat.lower_inclusive):
            found = cat
    return found


def classify(value: float, catalogue: str | Catalogue = "ikk", unit: str = "area", lang: str = "id") -> str | None:
    """Category label of an index value under the catalogue's cut-offs.

    >>> classify(75.0), classify(74.99, unit="family"), classify(81.78, lang="en")
    ('Responsif Gender dan Hak Anak', 'Sedang', 'Responsive to Gender and Child Rights')
    """
    cat = category_of(value, load_catalogue(catalogue).categories[unit])
    return None if cat is None else cat.label(lang)
