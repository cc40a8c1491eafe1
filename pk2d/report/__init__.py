"""Village, district and province reports: what each section shows, read from the run record only.

The report notebooks (``notebooks/10_village_report.ipynb``,
``11_district_report.ipynb``) hold the narrative structure and call this
package section by section: ``R = report.village(code)`` then
``display(R.summary)``, ``display(R.indicators)``... Every number comes from
the village's rows of the run's report tables (built once for all villages
at the end of the compare stage, :mod:`pk2d.report.tables`); nothing here
computes a statistic. Words come from the text catalogue
(``pk2d/templates/text.yaml``) and the partials in ``pk2d/templates/report/``.

Privacy: reports read aggregated tables only; small cells are suppressed
(:func:`~pk2d.report.privacy.suppress_small`), and so are the small counts of
sensitive indicators and every figure they could be worked out from, as the
run's report tables flag them (:mod:`pk2d.report.disclosure`); the family ids
for cadres never reach a report. Every printed estimate carries its
reliability flag (:func:`pk2d.report.tables.with_reliability`).
"""
from .batch import build_reports, index_rows, report_units, reports_dir
from .display import Fragment, Fragments, Table
from .district import DistrictReport, district
from .privacy import suppress_small
from .province import ProvinceReport, province
from .sections import Unit, estimate_text, open_unit
from .village import VillageReport, mark, village

__all__ = ["DistrictReport", "Fragment", "Fragments", "Table", "Unit", "VillageReport", "build_reports", "district",
           "estimate_text", "index_rows", "mark", "open_unit", "province", "ProvinceReport", "report_units", "reports_dir", "suppress_small",
           "village"]


def warm() -> None:
    """Do once, in the kernel zygote, what every report kernel would otherwise do first: compile the
    templates, load the text catalogue, import what pandas and pyarrow import on first use, and draw
    each kind of figure once (fonts and text layout cached). Forked kernels inherit all of it."""
    import numpy as np
    import pandas as pd
    import pyarrow.dataset  # noqa: F401  (pandas imports it on the first filtered read)

    from .. import plots
    from ..text import catalogue
    from .display import TEMPLATES, env

    catalogue()
    try:  # the kernel's switch to the inline backend reads matplotlib's backend entry points: once, here
        from matplotlib.backends.registry import backend_registry

        backend_registry.list_all()
    except Exception:  # pragma: no cover - older matplotlib
        pass
    for p in TEMPLATES.glob("*.html.j2"):
        env().get_template(p.name)
    prof = pd.DataFrame({"name": ["Dimensi A", "Dimensi B"], "Desa": [80.0, 60.0], "Kec.": [70.0, 65.0]})
    bins = pd.DataFrame({"low": np.arange(0.0, 100.0, 2.0), "high": np.arange(2.0, 102.0, 2.0), "n": 1})
    peers = pd.DataFrame({"index": [70.0, 75.0], "ci_low": [68.0, 73.0], "ci_high": [72.0, 77.0], "self": [True, False]})
    counts = pd.DataFrame({"label": ["a", "b"], "n_villages": [1, 2]})
    league = pd.DataFrame({"code": ["1", "2"], "name": ["A", "B"], "n_families": [10, 20], "index": [70.0, 60.0],
                           "ci_low": [65.0, 55.0], "ci_high": [75.0, 65.0]})
    for ax in (plots.dimension_profile(prof), plots.family_histogram(bins), plots.position(bins, peers),
               plots.category_bars(counts), plots.league(league)):
        plots.image(ax, "warm-up")
