"""The one bilingual text catalogue of pk2d: ``pk2d/templates/text.yaml``.

Every word a report, the index page, a figure or a workbook header shows
lives there, Bahasa Indonesia first, English beside it, under a dotted key
(``report.title_village``). A researcher changes a sentence by editing that
file; templates call :func:`t` (as ``t(...)`` in Jinja). Texts are plain
text: no HTML (emphasis and links are the templates' job).

>>> t("report.census_mark"), t("report.census_mark", "en")
('sensus: tanpa galat sampling', 'census: no sampling error')
>>> t("report.title_village", name="Pondok Labu")
'Laporan Desa Pondok Labu'
"""
from __future__ import annotations

import functools
import re
import string
from typing import Any

import yaml

from . import paths

TEXT_FILE = paths.PACKAGE_DIR / "templates" / "text.yaml"
LANGS = ("id", "en")
_HTML = re.compile(r"<[a-zA-Z/][^>]*>")


def lang_of(lang: str | None) -> str:
    """``"en"`` or ``"id"`` (anything else falls back to Bahasa Indonesia)."""
    return lang if lang in LANGS else "id"


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Dotted key -> ``{"id": ..., "en": ...}``; checked: both languages, same placeholders, no HTML."""
    raw = yaml.safe_load(TEXT_FILE.read_text(encoding="utf-8"))
    flat: dict[str, dict[str, str]] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and set(node) == set(LANGS):
            flat[prefix] = {k: str(node[k]) for k in LANGS}
            return
        if not isinstance(node, dict):
            raise ValueError(f"{TEXT_FILE.name}: {prefix} must be a mapping with 'id' and 'en'")
        for k, v in node.items():
            walk(f"{prefix}.{k}" if prefix else str(k), v)

    walk("", raw)
    for key, pair in flat.items():
        fields = [{f for _, f, _, _ in string.Formatter().parse(pair[lang]) if f} for lang in LANGS]
        if fields[0] != fields[1]:
            raise ValueError(f"{TEXT_FILE.name}: {key} has placeholders {sorted(fields[0])} in id but "
                             f"{sorted(fields[1])} in en")
        for lang in LANGS:
            if _HTML.search(pair[lang]):
                raise ValueError(f"{TEXT_FILE.name}: {key} ({lang}) holds HTML; texts are plain text")
    return flat


def t(key: str, lang: str | None = "id", /, **values: Any) -> str:
    """The text ``key`` in ``lang`` with ``{placeholders}`` filled from ``values``."""
    try:
        text = catalogue()[key][lang_of(lang)]
    except KeyError:
        raise KeyError(f"no text {key!r} in {TEXT_FILE}") from None
    return text.format(**values) if values else text


def has(key: str) -> bool:
    return key in catalogue()


def group(prefix: str, lang: str | None = "id") -> dict[str, str]:
    """Every text under ``prefix`` (``"rule"`` -> ``{"wajib_diisi": "kolom wajib kosong", ...}``)."""
    n = len(prefix) + 1
    return {k[n:]: v[lang_of(lang)] for k, v in catalogue().items() if k.startswith(prefix + ".")}
