"""Atomic writes, hashes, frozen data and process checks: every output appears whole or not at all.

Each writer writes a temporary file in the target folder, then renames it
over the target (``os.replace`` is atomic on one file system), so an
interrupted run never leaves a half-written file behind.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_text(d / "a.txt", "halo")
>>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
('halo', ['a.txt'])
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the callers that hand over frames; importing io stays light
    import pandas as pd


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target`` (a folder: a
    partitioned table) whole, on failure it is removed and ``target`` stays as it was."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if target.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(target, writer: Callable[[Path], Any]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_parquet(df: pd.DataFrame, target) -> Path:
    return _write(target, lambda p: df.to_parquet(p, index=False))


def write_csv(df: pd.DataFrame, target, **kw) -> Path:
    return _write(target, lambda p: df.to_csv(p, index=False, **kw))


def write_text(target, text: str) -> Path:
    return _write(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(target, data: bytes) -> Path:
    return _write(target, lambda p: p.write_bytes(data))


def write_json(target, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_excel(sheets: dict[str, pd.DataFrame], target) -> Path:
    """One workbook, one sheet per entry (names cut to Excel's 31 characters), a bold header row and one row
    per frame row (a missing value is an empty cell); the same sheets give the same bytes
    (:func:`workbook_bytes`: no clock in the file). Written row by row (openpyxl's write-only mode), so a
    sheet of a province's villages costs a second, not a minute.

    >>> import pandas as pd, tempfile, pathlib, openpyxl
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.xlsx"
    >>> _ = write_excel({"a": pd.DataFrame({"x": [1, None], "y": ["p", "q"]})}, f)
    >>> [[c.value for c in r] for r in openpyxl.load_workbook(f)["a"].iter_rows()]
    [['x', 'y'], [1, 'p'], [None, 'q']]
    """
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = openpyxl.Workbook(write_only=True)
    bold = Font(bold=True)
    for name, df in sheets.items():
        ws = wb.create_sheet(name[:31])
        header = []
        for h in df.columns:
            cell = WriteOnlyCell(ws, value=str(h))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in zip(*(_cells(df.iloc[:, j]) for j in range(df.shape[1]))):
            ws.append(row)
    return write_bytes(target, workbook_bytes(wb))


def _cells(col: pd.Series) -> list:
    """A column as cell values: Python numbers, strings, booleans and datetimes; None where missing; an
    integral float as itself (1.0) and an infinite one as the text ``inf``, as pandas' writer does."""
    import numpy as np

    values = col.to_numpy(dtype=object, na_value=None) if col.dtype != object else col.to_numpy()
    missing = col.isna().to_numpy()
    out = values.tolist()
    for i in np.flatnonzero(missing):
        out[i] = None
    out = [v.item() if isinstance(v, np.generic) else v for v in out]
    return [("inf" if v > 0 else "-inf") if isinstance(v, float) and np.isinf(v) else v for v in out]


def ensure_writable_dir(path: str | Path, what: str = "The output folder") -> Path:
    """Make sure ``path`` is a folder this process can write, before anything is computed for it.

    Creates it (and its parents) when missing, refuses a file in its place, and probes by creating,
    writing a few bytes to and removing a temporary file (``.pk2d-write-check.*.tmp``). Raises
    :class:`~pk2d.errors.OutputFolderError` naming ``what`` and the folder, the cause (a file, no
    permission, a read-only or full disk) and the fix; returns ``path``.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a-file"
    >>> _ = f.write_text("x")
    >>> ensure_writable_dir(f, "The folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pk2d.errors.OutputFolderError: The folder .../a-file cannot be written: it is a file, not a folder.
    Perbaikan / fix: ...
    """
    from .errors import OutputFolderError, os_error

    p = Path(path)
    blocker = next((q for q in (p, *p.parents) if q.exists() or q.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        kind = "a file, not a folder" if blocker.is_file() else "not a folder"
        problem = f"it is {kind}" if blocker == p else f"{blocker} is {kind}"
        raise OutputFolderError(p, problem, "name a folder (--processed / --out), or move the file away.",
                                what=what, errno="ENOTDIR")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pk2d-write-check.", suffix=".tmp", dir=p)
        try:
            os.write(fd, b"\0" * 4096)  # a full disk refuses even this much
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(probe)
    except OSError as exc:
        err = os_error(exc, folder=p, what=what)
        if err is None:  # nothing but a folder and a file was asked for: whatever refused it is the environment
            import errno

            name = errno.errorcode.get(exc.errno or -1, type(exc).__name__)
            why = os.strerror(exc.errno).lower() if exc.errno else "refused"
            err = OutputFolderError(p, f"the folder cannot be made or written there ({why}, {name})",
                                    "choose a folder on an ordinary writable disk (--processed / --out).",
                                    what=what, errno=name)
        raise err from None
    return p


def sweep_temp_files(folder: str | Path) -> int:
    """Remove the temporary files (``.NAME.XXXX.tmp``) that a killed writer left directly in ``folder``;
    only call it while holding the folder's lock (no other writer can own them). Returns how many."""
    n = 0
    with contextlib.suppress(OSError):
        for p in Path(folder).glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if p.is_file():
                    p.unlink()
                    n += 1
    return n


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def thaw(obj):
    """Plain dicts and lists from :func:`freeze`'s read-only mappings and tuples (for JSON, YAML)."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    return obj


def freeze(obj):
    """Read-only mappings and tuples all the way down (immutable settings and catalogues).

    >>> f = freeze({"a": [1, {"b": 2}]})
    >>> f["a"][1]["b"], thaw(f)
    (2, {'a': [1, {'b': 2}]})
    """
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(freeze(v) for v in obj)
    return obj


def process_alive(pid: int) -> bool:
    """True while process ``pid`` exists (a process of another user counts as alive).

    Never signals the process: on Windows ``os.kill(pid, 0)`` would terminate it, so there the
    process table is asked through the Win32 API.
    """
    if os.name == "nt":  # pragma: no cover - Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        ok = ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def workbook_bytes(wb, when=None) -> bytes:
    """An openpyxl workbook as XLSX bytes that depend on its content only: the workbook's created and
    modified dates and every zip entry's date are ``when`` (default 2020-01-01), not the clock.

    >>> import openpyxl
    >>> wb = openpyxl.Workbook(); wb.active.append(["a", 1])
    >>> workbook_bytes(wb) == workbook_bytes(wb)
    True
    """
    import datetime as _dt
    import io as _io
    import zipfile

    from openpyxl.writer.excel import ExcelWriter

    when = when or _dt.datetime(2020, 1, 1)

    class _FixedZip(zipfile.ZipFile):
        def writestr(self, name, data, compress_type=None, compresslevel=None):
            if not isinstance(name, zipfile.ZipInfo):
                name = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
                name.compress_type = self.compression
                name.external_attr = 0o644 << 16
            super().writestr(name, data, compress_type, compresslevel)

        def write(self, filename, arcname=None, compress_type=None, compresslevel=None):  # worksheets: temp files
            self.writestr(arcname or Path(filename).name, Path(filename).read_bytes(), compress_type, compresslevel)

    wb.properties.created = wb.properties.modified = when
    buf = _io.BytesIO()
    ExcelWriter(wb, _FixedZip(buf, "w", zipfile.ZIP_DEFLATED)).save()
    return buf.getvalue()
