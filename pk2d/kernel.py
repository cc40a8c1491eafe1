"""Kernels for the report and stage notebooks (executed by :mod:`pk2d.execute`).

One fresh kernel per notebook, always: nothing a notebook does can leak into
the next village's report. What is shared is only the cost of getting there.
A :class:`KernelPool` keeps kernels started *ahead of need* while earlier
reports execute, in one of two ways:

* ``fork`` (Linux): a *zygote* process imports the heavy modules once (pandas,
  matplotlib, pk2d.report...) and forks a new kernel process for each
  notebook. A forked kernel starts with those modules already imported, in
  about a tenth of a second of CPU instead of one and a half seconds; it is
  still a new process with a new IPython shell and an empty namespace.
* ``spawn`` (elsewhere, or ``PK2D_KERNEL_MODE=spawn``): the kernel spec's
  command through jupyter_client, as JupyterLab starts it.

Kernels talk over IPC (Unix sockets) in a private temporary folder each
(``pk2d-k-<pid>-*``), so no TCP port is ever chosen (papermill#511,
jupyter_client#487). No kernel outlives the process that asked for it: the
zygote and every forked kernel get ``PR_SET_PDEATHSIG`` (killed with their
parent, even when the parent is killed with SIGKILL) and ipykernel's
parent poller; folders left by a killed process are swept by the next pool.

>>> mode_for("auto") in ("fork", "spawn")
True
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import ReportError
from .io import process_alive as _alive

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: modules a forked kernel finds already imported (a report notebook's imports, and IPython's)
WARM_MODULES = ("numpy", "pandas", "pyarrow.parquet", "matplotlib", "matplotlib.pyplot", "IPython",
                "IPython.display", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
                "matplotlib_inline.backend_inline", "ipykernel.debugger", "jinja2", "pk2d.report", "pk2d.plots")
#: called once in the zygote after the imports (``module:function``): caches every kernel inherits
WARM_UP = "pk2d.report:warm"
#: single-threaded numerical libraries in kernels: forking after a thread pool started is unsafe, and
#: two report kernels on two cores gain nothing from more threads
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_TMP_PREFIX = "pk2d-k-"


def mode_for(mode: str = "auto") -> str:
    """``fork`` where a zygote can be used (Linux), else ``spawn``; ``PK2D_KERNEL_MODE`` overrides auto."""
    mode = os.environ.get("PK2D_KERNEL_MODE", mode) if mode == "auto" else mode
    if mode == "auto":
        return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "spawn"
    if mode not in ("fork", "spawn"):
        raise ReportError("kernels", f"unknown kernel mode {mode!r}", fix="Use fork, spawn or auto.")
    return mode


def _set_pdeathsig() -> None:
    """Linux: this process gets SIGKILL when its parent ends (however the parent ends)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def sweep_stale_folders() -> int:
    """Remove kernel folders (``pk2d-k-<pid>-*`` in the temporary folder) of processes that ended."""
    n = 0
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{_TMP_PREFIX}*"):
        parts = d.name[len(_TMP_PREFIX):].split("-")
        if d.is_dir() and parts and parts[0].isdigit() and not _alive(int(parts[0])):
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    return n


def _kernel_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-"))


def _connection(folder: Path) -> tuple[str, dict]:
    from jupyter_client.connect import write_connection_file

    return write_connection_file(str(folder / "kernel.json"), transport="ipc", ip=str(folder / "k"),
                                 key=secrets.token_hex(16).encode())


# --- a client that is ready as soon as the kernel is ------------------------------------------------
@functools.lru_cache(maxsize=1)
def _fast_client_class():
    from jupyter_client.asynchronous import AsyncKernelClient

    class FastKernelClient(AsyncKernelClient):
        """jupyter_client's client, but ready as soon as the kernel's IOPub says it is idle after
        ``kernel_info``, instead of after a fixed 0.2 s of silence (a fifth of a second per report)."""

        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            from queue import Empty

            deadline = time.monotonic() + (timeout if timeout is not None else 60)
            while True:
                request = self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply" and \
                        reply["parent_header"].get("msg_id") == request:
                    end = time.monotonic() + 1
                    while time.monotonic() < end:
                        try:
                            m = await self.iopub_channel.get_msg(timeout=max(0.0, end - time.monotonic()))
                        except Empty:
                            break
                        if (m["msg_type"] == "status" and m["content"].get("execution_state") == "idle"
                                and m["parent_header"].get("msg_id") == request):
                            self._handle_kernel_info_reply(reply)
                            return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

        wait_for_ready = _async_wait_for_ready  # AsyncKernelClient binds the name to the base method

    return FastKernelClient


# --- a kernel forked by the zygote ----------------------------------------------------------------
class ForkedKernel:
    """The kernel-manager side of a forked kernel, as nbclient uses a kernel manager."""

    ipykernel = True

    def __init__(self, pid: int, folder: Path, connection_file: str):
        self.pid = pid
        self.folder = folder
        self.connection_file = connection_file
        self.kernel_id = f"forked-{pid}"
        self._dead = False

    @property
    def has_kernel(self) -> bool:
        return not self._dead and _alive(self.pid)

    def is_alive(self) -> bool:
        return self.has_kernel

    def client(self, **kwargs):
        kc = _fast_client_class()(connection_file=self.connection_file, **kwargs)
        kc.load_connection_file()
        return kc

    def interrupt_kernel(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)

    def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        if self._dead:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL if now else signal.SIGTERM)
        if not now:
            deadline = time.monotonic() + 2
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._dead = True

    def cleanup_resources(self, restart: bool = False) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, n: int = 3) -> list[str]:
        with contextlib.suppress(OSError):
            lines = (self.folder / "kernel.log").read_text(encoding="utf-8", errors="replace").splitlines()
            return [ln for ln in lines if ln.strip()][-n:]
        return []


class Zygote:
    """A process that imported :data:`WARM_MODULES` once and forks a new kernel on request."""

    def __init__(self, python: str = sys.executable, modules=WARM_MODULES, startup_timeout: float = 120):
        env = {**os.environ, **THREAD_ENV, "MPLBACKEND": "agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        self._folder = _kernel_folder()
        self._log = open(self._folder / "zygote.log", "w+b")
        self.proc = subprocess.Popen([python, "-m", "pk2d.kernel", "zygote", WARM_UP, *modules], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=str(self._folder))
        self._lock = threading.Lock()
        self._buf = b""
        self._next = 0
        self._broken = False
        try:
            ready = self._reply(0, startup_timeout)
        except KernelStartError as exc:
            ready = {"error": str(exc)}
        if not ready.get("ready"):
            self.close()
            raise ReportError("kernels", f"the kernel zygote did not start: {ready.get('error', ready)}",
                              fix="Check that `import pk2d.report` works in the kernel's Python, or set "
                                  "PK2D_KERNEL_MODE=spawn.")

    def _tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return " / ".join(self._log.read().decode("utf-8", "replace").strip().splitlines()[-3:]) or "no answer"

    def _reply(self, want: int, timeout: float) -> dict:
        """The zygote's answer to request ``want`` (answers to earlier, abandoned requests are skipped). A
        zygote that does not answer in time is stopped: a late answer must never be taken for the next."""
        import select

        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("id", 0) == want:
                    return msg
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self._broken = True
                tail = self._tail()
                with contextlib.suppress(Exception):
                    self.proc.kill()
                raise KernelStartError(f"the kernel zygote {'ended' if ready else 'did not answer'}: {tail}")
            self._buf += chunk

    def _ask(self, req: dict, timeout: float) -> dict:
        with self._lock:
            if self._broken or self.proc.poll() is not None:
                raise KernelStartError("the kernel zygote has ended")
            self._next += 1
            req = {**req, "id": self._next}
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            return self._reply(self._next, timeout)

    def call(self, target: str, *args) -> None:
        """Run ``module:function(*args)`` in the zygote (e.g. preload data every kernel will read)."""
        reply = self._ask({"call": target, "args": list(args)}, 300)
        if not reply.get("ok"):
            raise KernelStartError(f"{target} failed in the kernel zygote: {reply.get('error', reply)}")

    def fork(self, cwd: str | Path) -> ForkedKernel:
        folder = _kernel_folder()
        try:
            conn, _ = _connection(folder)
            reply = self._ask({"connection_file": conn, "cwd": str(cwd), "log": str(folder / "kernel.log")}, 30)
            if "pid" not in reply:
                raise KernelStartError(f"fork failed: {reply.get('error', reply)}")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return ForkedKernel(int(reply["pid"]), folder, conn)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()  # the zygote kills its kernels and ends on end-of-file
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(Exception):
            self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def _zygote_main(warm_up: str, modules: list[str]) -> None:  # pragma: no cover - runs in the zygote process
    import importlib

    _set_pdeathsig()
    out = os.fdopen(os.dup(1), "wb")  # the answers' own pipe; anything else printed goes to the log
    os.dup2(2, 1)
    try:
        for m in modules:
            importlib.import_module(m)
        if warm_up:
            mod, func = warm_up.split(":")
            getattr(importlib.import_module(mod), func)()
    except Exception as exc:
        out.write((json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        out.flush()
        os._exit(1)
    children: set[int] = set()

    def reap(*_):
        for pid in list(children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    children.discard(pid)

    signal.signal(signal.SIGCHLD, reap)
    import gc

    gc.collect()
    gc.freeze()  # the warm heap moves out of the collector's sight: kernels do not copy it page by page
    zygote = os.getpid()
    out.write((json.dumps({"ready": True, "pid": zygote}) + "\n").encode())
    out.flush()
    for line in sys.stdin.buffer:
        req = json.loads(line)
        if "call" in req:
            try:
                mod, func = req["call"].split(":")
                getattr(importlib.import_module(mod), func)(*req.get("args", []))
                reply = {"ok": True}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out.write((json.dumps({**reply, "id": req.get("id", 0)}) + "\n").encode())
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            out.close()  # a kernel never writes to the zygote's answers
            _kernel_child(req, zygote)
        children.add(pid)
        out.write((json.dumps({"pid": pid, "id": req.get("id", 0)}) + "\n").encode())
        out.flush()
    for pid in children:  # the renderer is gone: so are its kernels
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os._exit(0)


def _kernel_child(req: dict, zygote: int) -> None:  # pragma: no cover - runs in a forked kernel
    try:
        _set_pdeathsig()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(req["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        logfd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        sys.argv = ["pk2d-kernel"]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", req["connection_file"], f"--IPKernelApp.parent_handle={zygote}",
                        "--HistoryManager.hist_file=:memory:", "--IPKernelApp.quiet=True"])
        # pyplot was imported in the zygote (Agg): switch to the inline backend a spawned kernel uses, so
        # plt.show() and figures left open display exactly as in JupyterLab
        app.shell.enable_matplotlib("inline")
        app.start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            os.write(2, f"pk2d kernel failed: {type(exc).__name__}: {exc}\n".encode())
    finally:
        os._exit(0)


# --- kernels started through the kernel spec ------------------------------------------------------
class SpawnedKernel:
    """A jupyter_client KernelManager over IPC in a private folder, started through the kernel spec."""

    def __init__(self, kernel_name: str, cwd: str | Path):
        from jupyter_client import KernelManager

        self.folder = _kernel_folder()
        self._log = open(self.folder / "kernel.log", "w+b")
        km = KernelManager(kernel_name=kernel_name)
        km.client_factory = _fast_client_class()
        km.transport = "ipc"
        km.connection_file = str(self.folder / "kernel.json")
        km.ip = str(self.folder / "k")
        env = {**os.environ, **THREAD_ENV}
        km.start_kernel(cwd=str(cwd), stdout=self._log, stderr=self._log, env=env,
                        extra_arguments=["--HistoryManager.hist_file=:memory:"])
        self.km = km

    def __getattr__(self, name):  # everything else nbclient asks of a kernel manager
        return getattr(self.km, name)

    @property
    def has_kernel(self) -> bool:
        return self.km.has_kernel

    def cleanup_resources(self, restart: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.km.cleanup_resources(restart=restart)
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, n: int = 3) -> list[str]:
        with contextlib.suppress(OSError):
            self._log.flush()
            lines = (self.folder / "kernel.log").read_text(encoding="utf-8", errors="replace").splitlines()
            return [ln for ln in lines if ln.strip()][-n:]
        return []


class KernelStartError(RuntimeError):
    """The kernel did not come up (died at start, no answer to kernel_info): worth a retry."""


class PoolClosed(KernelStartError):
    """The pool was closed (the batch is stopping): no kernel, and no point in retrying."""


class KernelPool:
    """Kernels started ahead of need: :meth:`take` hands out one that was started earlier (a fresh
    process that no notebook has used) and starts its replacement in the background.

    ``size``: kernels kept ready (the number of parallel jobs). ``cwd``: the kernels' working folder.
    ``preload``: ``("module:function", arg, ...)`` run once in the zygote before the first fork.
    """

    def __init__(self, *, size: int = 2, kernel_name: str = "python3", cwd: str | Path = ".", mode: str = "auto",
                 preload: tuple | None = None):
        sweep_stale_folders()
        self.mode = mode_for(mode)
        self.kernel_name = kernel_name
        self.cwd = str(cwd)
        self.size = max(1, int(size))
        self._ready: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._started: list = []
        self._out: list = []
        self.zygote = None
        python = _kernel_python(kernel_name)  # an unknown kernel name fails here, once, not per notebook
        if self.mode == "fork":
            self.zygote = Zygote(python=python)
            try:
                if preload:
                    self.zygote.call(*preload)
            except BaseException:
                self.zygote.close()
                raise
        self._threads: list[threading.Thread] = []
        for _ in range(self.size):
            self._spawn_starter()

    def _spawn_starter(self) -> None:
        t = threading.Thread(target=self._start_one, daemon=True, name="pk2d-kernel-start")
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _start_one(self) -> None:
        t0 = time.perf_counter()
        try:
            k = self.zygote.fork(self.cwd) if self.zygote else SpawnedKernel(self.kernel_name, self.cwd)
        except Exception as exc:  # handed to the taker, who reports it
            self._ready.put((exc, time.perf_counter() - t0))
            return
        with self._lock:
            if self._closed:
                discard(k)
                return
            self._started.append(k)
        self._ready.put((k, time.perf_counter() - t0))

    def take(self, timeout: float = 120):
        """(kernel, seconds waited): a kernel started ahead; its replacement starts now."""
        t0 = time.perf_counter()
        if self._closed:
            raise PoolClosed("the kernel pool is closed")
        try:
            k, _ = self._ready.get(timeout=timeout)
        except queue.Empty:
            raise KernelStartError(f"no kernel was ready within {timeout:.0f} s") from None
        if not self._closed:
            self._spawn_starter()
        if isinstance(k, Exception):
            raise KernelStartError(f"{type(k).__name__}: {k}") from k
        if self._closed:  # closed while waiting: this kernel is not handed out
            discard(k)
            raise PoolClosed("the kernel pool is closed")
        with self._lock:
            with contextlib.suppress(ValueError):
                self._started.remove(k)
            self._out = [x for x in self._out if x.has_kernel] + [k]
        return k, time.perf_counter() - t0

    def kill_running(self) -> None:
        """Kill the kernels handed out that still run and hand out no more (an interrupted batch stops
        at once)."""
        with self._lock:
            self._closed = True
            out, self._out = self._out, []
        for k in out:
            with contextlib.suppress(Exception):
                k.shutdown_kernel(now=True)

    def close(self) -> None:
        """Stop every kernel not handed out yet, and the zygote."""
        with self._lock:
            self._closed = True
            starting = list(self._threads)
        for t in starting:  # a kernel being started now is discarded by its thread once started
            t.join(timeout=30)
        with self._lock:
            left, self._started = self._started, []
        for k in left:
            discard(k)
        while True:
            try:
                k, _ = self._ready.get_nowait()
            except queue.Empty:
                break
            if not isinstance(k, Exception):
                discard(k)
        if self.zygote is not None:
            self.zygote.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def discard(k) -> None:
    """Stop a kernel and remove its folder, whatever state it is in."""
    with contextlib.suppress(Exception):
        k.shutdown_kernel(now=True)
    with contextlib.suppress(Exception):
        k.cleanup_resources()


def _kernel_python(kernel_name: str) -> str:
    """The interpreter of the kernel spec (the zygote must be the Python the spec would start)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except NoSuchKernel:
        raise KernelStartError(f"no kernel named {kernel_name!r}") from None
    if argv and Path(argv[0]).name.startswith("python"):
        return argv[0] if Path(argv[0]).is_absolute() else shutil.which(argv[0]) or sys.executable
    return sys.executable


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "zygote":  # pragma: no cover
    _zygote_main(sys.argv[2], sys.argv[3:])
