"""Report units: one notebook to render for one area, and where its files go.

>>> u = ReportUnit("desa", "63.02.06.2001", "Pondok Labu", Path("t.ipynb"), {"village": "63.02.06.2001"})
>>> u.stem, u.id
('63.02.06.2001-pondok-labu', 'desa/63.02.06.2001')
>>> slugify('Desa "X"/<script>'), slugify("../../etc/passwd"), slugify("Sukamaju Ṣelatan")
('desa-x-script', 'etc-passwd', 'sukamaju-selatan')
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..errors import ReportError
from ..fmt import printable
from ..text import lang_of, t

KINDS = ("desa", "kabupaten", "provinsi")
#: what a batch can write: the page, its PDF, the Word document, the agencies' workbook (villages only)
FORMATS = ("html", "pdf", "docx", "xlsx")
#: the formats each kind of report has
KIND_FORMATS = {"desa": FORMATS, "kabupaten": ("html", "pdf", "docx"), "provinsi": ("html", "pdf", "docx")}
#: file name endings of the formats (after the unit's stem)
SUFFIXES = {"html": ".html", "pdf": ".pdf", "docx": ".docx", "xlsx": "-rencana-dinas.xlsx"}
EXECUTED_SUBDIR = "_executed"
SLUG_MAX = 60
#: parameters that say where to read, not what to show: they do not decide whether a report is current
VOLATILE_PARAMETERS = ("processed_dir", "run_id")


def slugify(name: str, max_len: int = SLUG_MAX) -> str:
    """A file-name-safe slug: ASCII (NFKD), lower case, ``[a-z0-9-]``, at most ``max_len`` characters.

    >>> slugify("Pondok Labu"), slugify("Kota Baru (Utara) — II"), slugify("..."), slugify("Ñangka")
    ('pondok-labu', 'kota-baru-utara-ii', 'tanpa-nama', 'nangka')
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    text = text[:max_len].rstrip("-")
    return text or "tanpa-nama"


def safe_code(code: str) -> str:
    """An area code reduced to digits and single dots (``'63.02/../06'`` -> ``'63.02.06'``).

    >>> safe_code(" 63.02.06.2001 "), safe_code("../63..02"), safe_code("abc")
    ('63.02.06.2001', '63.02', '')
    """
    text = re.sub(r"[^0-9.]", "", str(code))
    return re.sub(r"\.{2,}", ".", text).strip(".")


@dataclass(frozen=True)
class ReportUnit:
    """One report to render: a village (``kind="desa"``), a district (``"kabupaten"``) or a province.

    ``name`` comes from the data and is untrusted: it only reaches a file name through
    :func:`slugify`, and HTML through escaping. What decides whether a rendered copy is current:
    ``digest`` (the hash of the data the report shows, from the run's report tables), the content
    of ``inputs`` (files), the template, the parameters (less :data:`VOLATILE_PARAMETERS`).

    >>> u = ReportUnit("kabupaten", "63.02", "Kotabaru", Path("11_district_report.ipynb"),
    ...                {"kabupaten": "63.02", "lang": "en"})
    >>> u.stem, u.lang, u.label
    ('63.02-kotabaru', 'en', 'kabupaten 63.02 Kotabaru')
    """

    kind: str
    code: str
    name: str
    template: Path
    parameters: dict = field(default_factory=dict, hash=False)
    inputs: tuple[Path, ...] = ()
    digest: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ReportError(f"{self.kind!r} {self.code}", f"unknown report kind {self.kind!r}",
                              fix=f"Use one of {', '.join(KINDS)}.")
        if not safe_code(self.code):
            raise ReportError(f"{self.kind} {printable(self.code, 40)!r}", "the area code has no digits",
                              fix="Pass the Kemendagri area code, e.g. 63.02.06.2001.")
        object.__setattr__(self, "template", Path(self.template))
        object.__setattr__(self, "parameters", dict(self.parameters or {}))
        inputs = (self.inputs,) if isinstance(self.inputs, (str, os.PathLike)) else self.inputs
        object.__setattr__(self, "inputs", tuple(Path(p) for p in inputs))

    @property
    def id(self) -> str:
        """``kind/code``: the unit's identity in the manifest."""
        return f"{self.kind}/{safe_code(self.code)}"

    @property
    def stem(self) -> str:
        """``<code>-<slug>``: the file name of every output of this unit, without suffix."""
        return f"{safe_code(self.code)}-{slugify(self.name)}"

    @property
    def lang(self) -> str:
        return lang_of(str(self.parameters.get("lang", "id")))

    @property
    def label(self) -> str:
        return printable(f"{self.kind} {safe_code(self.code)} {self.name}")

    @property
    def title(self) -> str:
        return t(f"page.title_{self.kind}", self.lang, name=printable(self.name), code=safe_code(self.code))

    @property
    def keyed_parameters(self) -> dict:
        return {k: v for k, v in self.parameters.items() if k not in VOLATILE_PARAMETERS}


def formats_of(kind: str, formats) -> tuple[str, ...]:
    """The asked-for ``formats`` a report of ``kind`` has, in :data:`FORMATS` order.

    >>> formats_of("kabupaten", ("xlsx", "html")), formats_of("desa", ("xlsx", "html"))
    (('html',), ('html', 'xlsx'))
    """
    return tuple(f for f in KIND_FORMATS.get(kind, FORMATS) if f in formats)


def output_path(out_dir: str | Path, kind: str, stem: str, fmt: str) -> Path:
    """``out_dir/<kind>/<stem><suffix>`` of one format."""
    return Path(out_dir) / kind / f"{stem}{SUFFIXES[fmt]}"


def unit_paths(unit: ReportUnit, out_dir: str | Path = paths.REPORTS_DIR) -> dict[str, Path]:
    """Where a unit's outputs go: one key per format of :data:`FORMATS`, and ``executed``.

    >>> p = unit_paths(ReportUnit("desa", "1.2", "../../etc/passwd", Path("t.ipynb")), "/r")
    >>> p["html"].as_posix(), p["xlsx"].as_posix(), p["executed"].as_posix()
    ('/r/desa/1.2-etc-passwd.html', '/r/desa/1.2-etc-passwd-rencana-dinas.xlsx', '/r/_executed/desa/1.2-etc-passwd.ipynb')
    """
    out = {f: output_path(out_dir, unit.kind, unit.stem, f) for f in FORMATS}
    out["executed"] = Path(out_dir) / EXECUTED_SUBDIR / unit.kind / f"{unit.stem}.ipynb"
    return out
