"""Locks on a folder: one writer at a time (``.lock``), and readers' pins against garbage collection.

Both are held by the operating system, so they are released when a process ends, however it ends.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import Iterator

from .errors import RunLockedError

LOCK_FILE = ".lock"
GC_LOCK = ".gc.lock"  #: shared while a reader pins a run, exclusive while garbage is collected


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[None]:
    """An exclusive lock on ``folder/.lock`` for the whole block; a second process gets
    :class:`~pk2d.errors.RunLockedError` at once. The operating system releases it when the
    process ends, however it ends (also on SIGKILL)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: msvcrt locks a byte range
            import msvcrt

            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:
                raise RunLockedError(folder, _holder(fd), what) from None
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLockedError(folder, _holder(fd), what) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:3])[:200]}".encode())
        yield
    finally:
        if os.name == "nt":  # pragma: no cover - Windows releases a byte-range lock only when asked
            with contextlib.suppress(OSError):
                import msvcrt

                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)


@contextlib.contextmanager
def gc_lock(folder: str | Path, *, shared: bool) -> Iterator[None]:
    """Readers pinning a run hold ``.gc.lock`` shared, garbage collection exclusive: a generation is
    never deleted between a reader reading ``run.json`` and its pin appearing. Blocking, short."""
    folder = Path(folder)
    fd = os.open(folder / GC_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: pins and collection are not interleaved there
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 300).decode("utf-8", "replace").strip() or "another process"
    except OSError:
        return "another process"
