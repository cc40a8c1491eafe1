"""What a render batch did: one :class:`UnitResult` per report, and the :class:`RenderSummary`.

>>> s = RenderSummary((), seconds=0.5)
>>> s.ok, s.text().splitlines()[-1]
(True, '0 rendered, 0 skipped, 0 failed in 0.5 s (jobs=1)')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReportError
from ..fmt import printable
from .unit import ReportUnit

#: where a report's seconds go: waiting for a kernel started ahead, running the cells, stopping the
#: kernel, the HTML conversion, the PDF print
PHASES = ("kernel_start", "execute", "kernel_stop", "html", "pdf", "docx", "xlsx")


@dataclass(frozen=True)
class UnitResult:
    """What happened to one unit. ``status`` is ``rendered``, ``skipped`` or ``failed``.

    ``timings`` (seconds): the :data:`PHASES`, ``papermill`` (the whole papermill call) and
    ``total``. ``cell_index`` is the failing cell's index in the *executed* notebook (which has
    papermill's injected-parameters cell) kept at ``executed``.
    """

    unit: ReportUnit
    status: str
    outputs: tuple[Path, ...] = ()
    executed: Path | None = None
    error: str | None = None
    cell_index: int | None = None
    timings: dict = field(default_factory=dict, hash=False)
    attempts: int = 0
    pages: int | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def as_error(self) -> ReportError | None:
        """The failure as a :class:`~pk2d.errors.ReportError` (``None`` when not failed)."""
        if self.ok:
            return None
        fix = None
        if self.executed and self.cell_index is not None:
            fix = f"See cell {self.cell_index} (counted from 0) of the executed notebook {self.executed}."
        elif self.executed:
            fix = f"See the executed notebook {self.executed}."
        return ReportError(self.unit.label, self.error or "failed", cell_index=self.cell_index, fix=fix)


@dataclass(frozen=True)
class RenderSummary:
    """All units of one batch, in input order, with wall-clock seconds, the PDF engine used, and the
    peak memory of the batch's process tree (renderer, kernels, Chromium; Linux)."""

    results: tuple[UnitResult, ...]
    seconds: float = 0.0
    jobs: int = 1
    pdf_engine: str = ""
    peak_memory_mb: float | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """True when no unit failed (skipped units are fine) and the batch was not interrupted."""
        return all(r.ok for r in self.results) and not self.interrupted

    def by_status(self, status: str) -> list[UnitResult]:
        return [r for r in self.results if r.status == status]

    @property
    def rendered(self) -> list[UnitResult]:
        return self.by_status("rendered")

    @property
    def skipped(self) -> list[UnitResult]:
        return self.by_status("skipped")

    @property
    def failed(self) -> list[UnitResult]:
        return self.by_status("failed")

    def __getitem__(self, unit_id: str) -> UnitResult:
        """Result by unit id (``"desa/63.02.06.2001"``)."""
        for r in self.results:
            if r.unit.id == unit_id:
                return r
        raise KeyError(unit_id)

    def mean_timings(self) -> dict[str, float]:
        """Mean seconds per phase over the rendered units."""
        done = self.rendered
        keys = [*PHASES, "papermill", "total"]
        return {k: sum(r.timings.get(k, 0.0) for r in done) / len(done) for k in keys} if done else {}

    def text(self, *, all_rows: bool = True) -> str:
        """A plain-text table: one line per unit (``all_rows=False``: not the skipped ones), then the
        failures in full, then totals, the mean seconds per phase and the peak memory."""
        head = (f"{'status':<9} {'unit':<40} {'total':>6} {'kernel':>6} {'exec':>6} {'stop':>5} "
                f"{'html':>5} {'pdf':>5} {'docx':>5} {'xlsx':>5}  note")
        lines = [head, "-" * len(head)]
        for r in self.results:
            if not all_rows and r.status == "skipped":
                continue
            t = r.timings
            cols = "".join(f" {t[k]:>{w}.2f}" if k in t else f" {'':>{w}}" for k, w in (
                ("total", 6), ("kernel_start", 6), ("execute", 6), ("kernel_stop", 5), ("html", 5), ("pdf", 5), ("docx", 5),
                ("xlsx", 5)))
            note = r.note
            if r.status == "failed":
                cell = f"cell {r.cell_index}: " if r.cell_index is not None else ""
                note = printable(f"{cell}{r.error}", 60)
            lines.append(f"{r.status:<9} {printable(r.unit.label, 40):<40}{cols}  {note}")
        if self.failed:
            lines += ["", "Gagal / failed:"]
            for r in self.failed:
                err = r.as_error()
                lines.append(f"  {printable(err.message)}")
                if err.fix:
                    lines.append(f"    {printable(err.fix)}")
        lines.append("")
        n = {s: len(self.by_status(s)) for s in ("rendered", "skipped", "failed")}
        engine = f", pdf: {self.pdf_engine}" if self.pdf_engine else ""
        lines.append(f"{n['rendered']} rendered, {n['skipped']} skipped, {n['failed']} failed "
                     f"in {self.seconds:.1f} s (jobs={self.jobs}{engine})")
        if self.interrupted:
            lines.append("interrupted: the reports not rendered above render on the next run")
        mean = self.mean_timings()
        if mean:
            seen = {k for r in self.rendered for k in r.timings}
            lines.append("mean per rendered report: " + ", ".join(
                f"{k} {mean[k]:.2f} s" for k in (*PHASES, "total") if k in seen))
        if self.peak_memory_mb:
            lines.append(f"peak memory (renderer, kernels and browser together): {self.peak_memory_mb:,.0f} MB")
        return "\n".join(lines)
