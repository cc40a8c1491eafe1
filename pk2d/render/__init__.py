"""Rendering parameterised notebooks to publishable pages: HTML without code, and PDF.

Generic: knows notebooks, kernels, pages and files, not what a report says
(that is :mod:`pk2d.report`). Modules: :mod:`~pk2d.render.unit` (what to
render, where it goes), :mod:`~pk2d.render.publish` (notebook -> HTML page),
:mod:`~pk2d.render.pdf` (HTML -> PDF), :mod:`~pk2d.render.batch` (many units,
incremental, interruptible), :mod:`~pk2d.render.index_page`.
"""
from .batch import BatchInterrupted, load_manifest, render_units, sweep_temporary, unit_key
from .index_page import write_index
from .publish import external_resources, notebook_to_html
from .results import PHASES, RenderSummary, UnitResult
from .unit import FORMATS, ReportUnit, safe_code, slugify, unit_paths

__all__ = ["BatchInterrupted", "FORMATS", "PHASES", "RenderSummary", "ReportUnit", "UnitResult", "external_resources",
           "load_manifest", "notebook_to_html", "render_units", "safe_code", "slugify", "sweep_temporary", "unit_key",
           "unit_paths", "write_index"]
