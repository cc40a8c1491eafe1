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

    def __reduce__(self):
        # the data-carrying subclasses take other arguments than their message: rebuild from the
        # attributes, so an error raised in a Dask worker reaches the command as it was raised
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls, state: dict) -> Pk2dError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err.__str__())
    return err


class InputFileError(Pk2dError):
    """A raw input file cannot be used at all (missing column, empty, unreadable...)."""

    def __init__(self, path, problem: str, *, fix: str | None = None, column: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.column = column
        super().__init__(f"File {self.path}: {problem}", fix=fix)


class MappingError(Pk2dError):
    """A column mapping (:mod:`pk2d.mapping`) is invalid, or does not fit a file it is applied to.
    ``path``: the mapping file; ``key``: the entry at fault (``tables.keluarga.recode.ibadah_bersama``)."""

    def __init__(self, path, problem: str, fix: str | None = None, key: str | None = None):
        self.path = safe_path(path)
        self.problem = problem
        self.key = key
        where = f" [{key}]" if key else ""
        super().__init__(f"Mapping {self.path}{where}: {problem}", fix=fix)


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
    """Rendering a report failed; carries the unit (village/district) and the cell. Exit code 1 (a report
    failed), or ``exit_code`` when given."""

    exit_code = 1

    def __init__(self, unit: str, problem: str, *, cell_index: int | None = None, fix: str | None = None,
                 exit_code: int | None = None):
        self.unit = unit
        self.cell_index = cell_index
        if exit_code is not None:  # 2 when the environment, not a report, is at fault (an unwritable folder)
            self.exit_code = exit_code
        cell = f" (cell {cell_index})" if cell_index is not None else ""
        super().__init__(f"Report {unit}{cell}: {problem}", fix=fix)


class KeyChangedError(Pk2dError):
    """The processed folder was cleaned with another pseudonymisation key: cleaning it again would give every
    family and member new pseudonymous ids and break the link between a family's rounds. Carries the two key
    fingerprints (never the key)."""

    def __init__(self, processed_dir, recorded_fp: str, current_fp: str, *, source: str | None = None):
        self.processed_dir = str(processed_dir)
        self.recorded_fp = str(recorded_fp)
        self.current_fp = str(current_fp)
        from . import paths

        now = f" ({source})" if source else ""
        super().__init__(
            f"The run in {self.processed_dir} was cleaned with another pseudonymisation key (kunci pseudonim): "
            f"fingerprint {self.recorded_fp[:8]}, the key in use now{now} has {self.current_fp[:8]}. Cleaning "
            "with it would change every id_keluarga and id_anggota, and a family's rounds would no longer link; "
            "nothing was changed.",
            fix=f"set PK2D_KEY to the key used before, or restore the key file used before ({paths.KEY_FILE}; "
                "PK2D_KEY_FILE names another, PK2D_KEY wins over both). Or, to start over with the new "
                "key on purpose, run `pk2d clean --new-key` (clean(..., new_key=True)): all pseudonymous ids "
                "change, and earlier exports and intervention lists no longer link to the new ones.")


#: errno -> (the cause in plain words, the fix); the operating-system failures a user can act on
_OS_CAUSES = {
    "ENOSPC": ("the disk is full (disk penuh; no space left on device, ENOSPC)",
               "free some space on that disk, or write to a folder on another disk (--processed / --out)."),
    "EDQUOT": ("the disk quota of this user is used up (EDQUOT)",
               "free some space within the quota, or write to a folder on another disk (--processed / --out)."),
    "EROFS": ("the file system is read-only (EROFS)",
              "choose a folder on a writable disk (--processed / --out), or mount the disk read-write."),
    "EACCES": ("permission denied: this user may not write (or read) there (EACCES)",
               "give this user access to it (chmod / chown), or choose a folder you may write "
               "(--processed / --out)."),
    "EPERM": ("the operation is not permitted there (EPERM)",
              "give this user access to it (chmod / chown), or choose a folder you may write "
              "(--processed / --out)."),
    "ENOTDIR": ("a part of the path is a file, not a folder (ENOTDIR)",
                "the path names a file: choose a folder (--processed / --out), or move the file away."),
    "EEXIST": ("a file is in the way, where a folder is needed (EEXIST)",
               "the path names a file: choose a folder (--processed / --out), or move the file away."),
    "EISDIR": ("it is a folder, where a file is needed (EISDIR)",
               "name a file, not a folder, or move the folder away."),
    "ENAMETOOLONG": ("the path is too long for the file system (ENAMETOOLONG)", "choose a shorter folder path."),
}


def safe_path(path) -> str:
    """A path as shown in a message: printable characters only, and any run of 16 or more digits (the length of
    a NIK or No. KK) masked, so a message can never carry an identifier even from a badly named folder.

    >>> safe_path("/data/" + "3201" * 4 + "/x\\n")
    '/data/################/x'
    """
    import os
    import re

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    text = "".join(ch for ch in str(path) if ch.isprintable())
    return re.sub(r"\d{16,}", lambda m: "#" * len(m.group()), text)[:400]


class FileSystemError(Pk2dError):
    """The operating system refused a file operation pk2d can do nothing about: a full disk, a read-only file
    system, no permission, a file where a folder should be. ``path`` is a path (never file content; shown
    through :func:`safe_path`), ``cause`` the cause in plain words, ``errno`` its symbolic name (``"ENOSPC"``)
    when known."""

    def __init__(self, path, cause: str, *, fix: str, errno: str | None = None):
        self.path = safe_path(path)
        self.cause = cause
        self.errno = errno
        super().__init__(self._head(), fix=fix)

    def _head(self) -> str:
        return f"{self.path}: {self.cause}."


class OutputFolderError(FileSystemError):
    """A folder pk2d must write (processed data, reports, synthetic exports) cannot be written: ``problem`` says
    why (a file in its place, no permission, read-only, full), ``what`` which folder it is."""

    def __init__(self, path, problem: str, fix: str, *, what: str = "The output folder", errno: str | None = None):
        self.what = what
        self.problem = problem
        super().__init__(path, problem, fix=fix, errno=errno)

    def _head(self) -> str:
        return f"{self.what} {self.path} cannot be written: {self.problem}."


def os_error(exc: OSError, *, folder=None, what: str | None = None) -> FileSystemError | None:
    """The clear error for an :class:`OSError` a user can act on (see :data:`_OS_CAUSES`), or None for any other
    (a bug: the caller re-raises it). Names ``exc.filename`` (a path only; never ``str(exc)``, which may quote
    anything); with ``folder``, a file inside it (or no file name, as when a disk fills mid-write) names
    ``folder`` instead, as an :class:`OutputFolderError` of ``what`` when given.

    >>> import errno
    >>> print(os_error(OSError(errno.ENOSPC, "No space left on device"), folder="/d", what="The folder"))
    The folder /d cannot be written: the disk is full (disk penuh; no space left on device, ENOSPC).
    Perbaikan / fix: free some space on that disk, or write to a folder on another disk (--processed / --out).
    """
    import errno as _errno
    import os
    from pathlib import Path

    name = _errno.errorcode.get(exc.errno or -1)
    if name not in _OS_CAUSES:
        return None
    cause, fix = _OS_CAUSES[name]
    file = exc.filename if exc.filename not in (None, "") and not isinstance(exc.filename, int) else None
    if folder is not None:
        inside = file is None
        if file is not None:
            try:
                Path(os.path.abspath(os.fsdecode(file))).relative_to(Path(os.path.abspath(folder)))
                inside = True
            except ValueError:
                inside = False
        if inside:
            return OutputFolderError(folder, cause, fix, what=what, errno=name) if what else \
                FileSystemError(folder, cause, fix=fix, errno=name)
    if file is None:
        return FileSystemError("(a file pk2d was writing)", cause, fix=fix, errno=name)
    return FileSystemError(file, cause, fix=fix, errno=name)
