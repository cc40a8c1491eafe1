"""One exception base for pk2d; subclasses carry the data needed to act on them.

The CLI catches :class:`Pk2dError`, prints its message (one paragraph: which
file, what is wrong, how to fix it) and exits with ``exit_code``; it never shows
a bare traceback for bad input. Messages must never contain personal data
(NIK, No. KK, names, birth dates).
"""
from __future__ import annotations


class Pk2dError(Exception):
    """Base class of every error pk2d raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\nPerbaikan / fix: {self.fix}"


class InputFileError(Pk2dError):
    """A raw input file cannot be used at all (missing column, empty, unreadable...)."""

    def __init__(self, path, problem: str, *, fix: str | None = None, column: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.column = column
        super().__init__(f"File {self.path}: {problem}", fix=fix)


class CatalogueError(Pk2dError):
    """An indicator catalogue is invalid (weights, rules, cut-offs)."""

    def __init__(self, source, problem: str, *, fix: str | None = None, item: str | None = None):
        self.source = str(source)
        self.item = item
        where = f" [{item}]" if item else ""
        super().__init__(f"Katalog {self.source}{where}: {problem}", fix=fix)


class MissingInputError(Pk2dError):
    """A stage was asked to run before the stage it needs has produced its output."""

    def __init__(self, path, needed_by: str, *, fix: str):
        self.path = str(path)
        super().__init__(f"{needed_by} needs {self.path}, which does not exist.", fix=fix)


class StaleRunError(Pk2dError):
    """The run record no longer matches what it was made from (catalogue, inputs, code), or a stage
    is missing or older than the stage before it. ``problems`` lists each mismatch in one line;
    ``command`` brings the run up to date."""

    def __init__(self, processed_dir, problems: list[str], command: str):
        self.processed_dir = str(processed_dir)
        self.problems = list(problems)
        self.command = command
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"The run in {self.processed_dir} is out of date; no report is made from it:\n{lines}",
                         fix=f"run `{command}` to bring the run up to date (`pk2d run` does every stage that is "
                             "out of date, then the reports).")


class RunLockedError(Pk2dError):
    """Another pk2d process is writing the same folder (processed data or reports)."""

    def __init__(self, folder, holder: str, what: str):
        self.folder = str(folder)
        self.holder = holder
        super().__init__(f"{what} in {self.folder} is already running ({holder}); two at once would mix their files.",
                         fix="wait until it has finished (it stops by itself), or write to another folder "
                             "(--processed / --out).")


class AreaNotFoundError(Pk2dError):
    """A village, kecamatan or kabupaten code that the run has no estimate for."""

    def __init__(self, kind: str, code: str, problem: str, *, fix: str):
        self.kind = kind
        self.code = "".join(ch for ch in str(code) if ch.isprintable())[:40]
        super().__init__(f"{kind} {self.code}: {problem}", fix=fix)


class ReportError(Pk2dError):
    """Rendering a report failed; carries the unit (village/district) and the cell."""

    exit_code = 1

    def __init__(self, unit: str, problem: str, *, cell_index: int | None = None, fix: str | None = None):
        self.unit = unit
        self.cell_index = cell_index
        cell = f" (cell {cell_index})" if cell_index is not None else ""
        super().__init__(f"Report {unit}{cell}: {problem}", fix=fix)
