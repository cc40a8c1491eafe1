"""Faults from outside pk2d: a changed key, a stage killed at any moment, a full or read-only disk, a folder
this user may not write, a file where a folder should be.

Each ends with one clear paragraph (what, where, the fix), exit code 2 and no traceback, and leaves the
run that was there as it was. The disk tests mount a small tmpfs (root only: skipped, with the reason,
elsewhere); the permission test drops the capabilities that let root write anywhere (or, not being
root, relies on chmod alone).
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from pk2d import cli, paths, pipeline, store
from pk2d.errors import KeyChangedError, OutputFolderError
from pk2d.pipeline import build_compare, build_index, clean
from tests.conftest import KEY, copy_run

ROOT = Path(__file__).resolve().parents[1]
FAKE_ID = "3201" * 4  #: shaped like a NIK (16 digits), built so that no identifier-shaped literal is in the tree
ROUND_1 = "SINTETIS_tabalong_2023_putaran1_*.csv"
ROUND_2 = "SINTETIS_tabalong_2024_putaran2_*.csv"


def _raw(folder: Path, pattern: str = ROUND_1) -> Path:
    """A small raw folder: one pair of Tabalong exports (about 1,200 families) and the desa lokus list."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in [*paths.RAW_DIR.glob(pattern), paths.RAW_DIR / "SINTETIS_desa_lokus.csv"]:
        shutil.copy2(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """clean + index + compare of :func:`_raw` (read-only: change a copy made with :func:`_copy`)."""
    base = tmp_path_factory.mktemp("tiny")
    out = base / "processed"
    clean(_raw(base / "raw"), out, key=KEY)
    build_index(out, catalogues=("ikk",))
    build_compare(out, n_boot=19, n_runs=10)
    return out


def _copy(run: Path, base: Path, name: str = "processed") -> Path:
    """A copy of a run that can be changed, with its raw folder beside it (the record names ``../raw``)."""
    if not (base / "raw").is_dir():
        shutil.copytree(run.parent / "raw", base / "raw")
    return copy_run(run, base / name)


def _env(**extra) -> dict:
    env = {**os.environ, "PK2D_KEY": KEY.decode(), "PYTHONDONTWRITEBYTECODE": "1", **extra}
    env.pop("PK2D_KEY_FILE", None)
    return env


def _pk2d(*args, preexec_fn=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command line in a process of its own (its real stderr: no traceback may reach it)."""
    return subprocess.run([sys.executable, "-m", "pk2d.cli", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def _clear(err: str, *words: str) -> None:
    """One clear message: no traceback, not an internal error, every word in it."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert "Perbaikan / fix:" in err, err
    for w in words:
        assert w in err, (w, err)


def _leftovers(pdir: Path) -> list[str]:
    """Temporary folders and files a writer left (generation folders ``.tmp-*``, atomic ``.NAME.*.tmp``)."""
    return sorted(str(p.relative_to(pdir)) for p in pdir.rglob("*")
                  if p.name.startswith(".tmp-") or (p.name.startswith(".") and p.name.endswith(".tmp")))


# --- the pseudonymisation key ----------------------------------------------------------------------
def test_a_changed_key_is_refused_and_changes_nothing(tmp_path, monkeypatch, capsys):
    raw, work = _raw(tmp_path / "raw"), tmp_path / "processed"
    key_a, key_b = "kunci-rahasia-AAAA", "kunci-rahasia-BBBB"
    first = clean(raw, work, key=key_a)
    ids = set(first.families["id_keluarga"])
    before = (work / store.RUN_FILE).read_bytes()

    for force in (False, True):  # --force recomputes; it never starts over with another key
        with pytest.raises(KeyChangedError) as info:
            clean(raw, work, key=key_b, force=force)
        assert (work / store.RUN_FILE).read_bytes() == before
    exc = info.value
    assert exc.exit_code == 2 and exc.recorded_fp == pipeline.key_fingerprint(key_a.encode())
    assert exc.current_fp == pipeline.key_fingerprint(key_b.encode())
    text = str(exc)
    assert exc.recorded_fp[:8] in text and exc.current_fp[:8] in text and "--new-key" in text
    assert key_a not in text and key_b not in text  # fingerprints only, never the key

    monkeypatch.setenv("PK2D_KEY", key_b)
    assert cli.main(["clean", "--raw", str(raw), "--processed", str(work)]) == 2
    err = capsys.readouterr().err
    _clear(err, "another pseudonymisation key", "PK2D_KEY", str(paths.KEY_FILE), "--new-key", "no longer link")
    assert key_b not in err and (work / store.RUN_FILE).read_bytes() == before

    # `pk2d run` (pipeline.run) refuses before any notebook runs: it never passes --new-key on
    with pytest.raises(KeyChangedError):
        pipeline.run(raw_dir=raw, processed_dir=work, executed_dir=tmp_path / "executed", reports=False)
    assert "new_key" not in vars(cli.build_parser().parse_args(["run"]))
    assert (work / store.RUN_FILE).read_bytes() == before

    assert cli.main(["clean", "--raw", str(raw), "--processed", str(work), "--new-key"]) == 0  # on purpose
    again = store.open_run(work, check=False)
    assert again.settings("clean")["key_fingerprint"] == exc.current_fp
    assert again.problems(require=("clean",)) == []
    assert not ids & set(again.table("families")["id_keluarga"])  # every pseudonymous id changed
    assert cli.main(["clean", "--raw", str(raw), "--processed", str(work)]) == 0  # now the key of the run
    assert "tidak berubah / up to date" in capsys.readouterr().out


# --- a clean stage killed at any moment -----------------------------------------------------------
KILLED_CLEAN = """
import sys
from pk2d.pipeline import clean
print("GO", flush=True)
clean(sys.argv[1], sys.argv[2], key=sys.argv[3].encode(), force=True)
print("DONE", flush=True)
"""


def test_a_clean_killed_at_random_points_leaves_a_consistent_run(tmp_path):
    raws = [_raw(tmp_path / "raw1", ROUND_1), _raw(tmp_path / "raw2", ROUND_2)]
    work = tmp_path / "processed"
    t0 = time.perf_counter()
    clean(raws[0], work, key=KEY)
    took = time.perf_counter() - t0  # how long a clean takes on this machine now: the kills fall within it
    rng = random.Random(13)
    outcomes = []
    for i in range(4):
        before = (work / store.RUN_FILE).read_bytes()
        raw = raws[(i + 1) % 2]  # each clean reads the other round: a new generation and a new record
        proc = subprocess.Popen([sys.executable, "-c", KILLED_CLEAN, str(raw), str(work), KEY.decode()], cwd=ROOT,
                                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "GO"
            time.sleep(rng.uniform(0.1, 1.1) * took)
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        outcomes.append("finished" if "DONE" in out else "killed")
        after = (work / store.RUN_FILE).read_bytes()
        record = json.loads(after)  # whole: the old bytes or a complete new record, never half of one
        assert after == before or record["stages"]["clean"]["settings"]["raw_dir"].endswith(raw.name)
        run = store.open_run(work, check=False)
        assert run.problems(require=("clean",)) == [], (i, outcomes)
        assert len(run.table("families")) > 1000
    res = clean(raws[0], work, key=KEY, force=True)  # the next clean succeeds and sweeps what the kills left
    assert res.run.problems(require=("clean",)) == []
    assert _leftovers(work) == [], outcomes
    assert sorted(d.name for d in (work / "clean").iterdir()) == [res.run.record("clean").generation]


# --- a full, read-only or forbidden disk ---------------------------------------------------------------
@contextmanager
def _tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted on ``folder`` for the block (skips the test where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux mount(8) for a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()[:200]}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill the file system of ``disk`` up to ``leave`` bytes of free space."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_a_full_disk_is_a_clear_message_and_keeps_the_earlier_run(tmp_path):
    raw = _raw(tmp_path / "raw")
    with _tmpfs(tmp_path / "disk", "3m") as disk:
        work = disk / "processed"
        clean(raw, work, key=KEY)  # about 230 KB: fits
        before = (work / store.RUN_FILE).read_bytes()
        _fill(disk, 32 * 1024)  # the index (about 220 KB) does not, nor a second clean
        for args in (("index", "--processed", work, "--catalogue", "ikk"),
                     ("clean", "--raw", raw, "--processed", work, "--force")):
            done = _pk2d(*args)
            assert done.returncode == 2, done.stderr
            _clear(done.stderr, str(work), "the disk is full", "ENOSPC", "free some space")
            assert len(done.stderr.strip().splitlines()) == 2  # the problem, then the fix
            assert (work / store.RUN_FILE).read_bytes() == before
            run = store.open_run(work, check=False)
            assert not run.has("index") and run.problems(require=("clean",)) == []
            assert _leftovers(work) == []
        (disk / "filler").unlink()
        assert _pk2d("index", "--processed", work, "--catalogue", "ikk").returncode == 0  # space again: it goes on


def test_a_read_only_file_system_is_a_clear_message(tmp_path):
    raw = _raw(tmp_path / "raw")
    with _tmpfs(tmp_path / "disk", "2m") as disk:
        work = disk / "processed"
        clean(raw, work, key=KEY)
        before = (work / store.RUN_FILE).read_bytes()
        ro = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {ro.stderr.strip()[:200]}")
        done = _pk2d("clean", "--raw", raw, "--processed", work, "--force")
        assert done.returncode == 2
        _clear(done.stderr, str(work), "read-only", "EROFS")
        assert (work / store.RUN_FILE).read_bytes() == before


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
PR_CAPBSET_DROP = 24


def _as_plain_user():
    """Make the child obey file permissions: root drops the capabilities that override them (its own files
    stay readable through their owner bits, so the interpreter under /root still runs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _chmod_tree(top: Path, dirs: int, files: int) -> None:
    for p in [top, *top.rglob("*")]:
        p.chmod(dirs if p.is_dir() else files)


def test_a_folder_this_user_may_not_write_is_a_clear_message(tiny_run, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("file permissions as on Linux")
    preexec = _as_plain_user if os.geteuid() == 0 else None
    work = _copy(tiny_run, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    before = (work / store.RUN_FILE).read_bytes()
    _chmod_tree(work, 0o555, 0o444)
    locked.chmod(0o555)
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(locked / 'probe')!r}, 'w')"],
                               capture_output=True, preexec_fn=preexec)
        if probe.returncode == 0:
            pytest.skip("cannot make a folder read-only for a child process here")
        raw = tmp_path / "raw"
        for args in (("clean", "--raw", raw, "--processed", work, "--force"),
                     ("index", "--processed", work, "--catalogue", "ikk", "--force"),
                     ("compare", "--processed", work, "--n-boot", 19, "--n-runs", 10, "--force")):
            done = _pk2d(*args, preexec_fn=preexec)
            assert done.returncode == 2, done.stderr
            _clear(done.stderr, f"{work} cannot be written", "permission denied", "chmod")
            assert len(done.stderr.strip().splitlines()) == 2
        writable = _copy(tiny_run, tmp_path, "writable")  # a report pins the run it reads: it writes there
        for args, where in ((("synth", "--out", locked / "new"), locked / "new"),
                            (("report", "--village", "63.09.11.2005", "--processed", writable, "--out",
                              locked / "reports", "--format", "html"), locked / "reports"),
                            (("interventions", "--village", "63.09.11.2005", "--processed", work), work / "exports")):
            done = _pk2d(*args, preexec_fn=preexec)
            assert done.returncode == 2, done.stderr
            _clear(done.stderr, str(where), "cannot be written", "permission denied")
        assert (work / store.RUN_FILE).read_bytes() == before
    finally:
        _chmod_tree(work, 0o755, 0o644)
        locked.chmod(0o755)
    assert store.open_run(work).problems() == [] and _leftovers(work) == []


# --- a file where a folder should be ---------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ("clean", "--raw", "{raw}", "--processed", "{file}"),
    ("clean", "--raw", "{raw}", "--processed", "{file}/processed"),
    ("index", "--processed", "{file}"),
    ("compare", "--processed", "{file}"),
    ("report", "--village", "63.09.11.2005", "--processed", "{file}"),
    ("report", "--village", "63.09.11.2005", "--processed", "{run}", "--out", "{file}"),
    ("interventions", "--village", "63.09.11.2005", "--processed", "{file}"),
    ("synth", "--out", "{file}"),
    ("run", "--raw", "{raw}", "--processed", "{file}"),
], ids=lambda c: " ".join(c).replace("{", "").replace("}", ""))
def test_a_file_where_a_folder_should_be_is_a_clear_message(command, tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PK2D_KEY", KEY.decode())
    file = tmp_path / "a-file.txt"
    file.write_text("not a folder\n")
    run = _copy(tiny_run, tmp_path)
    raw = tmp_path / "raw"
    argv = [a.format(raw=raw, file=file, run=run) for a in command]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    _clear(err, str(file), "is a file")
    assert file.read_text() == "not a folder\n"


def test_the_early_check_refuses_before_anything_is_written(tmp_path):
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(OutputFolderError, match="it is a file, not a folder") as info:
        clean(paths.RAW_DIR, file, key=KEY)
    assert Path(info.value.path) == file.resolve() and info.value.exit_code == 2
    from pk2d.io import ensure_writable_dir

    new = ensure_writable_dir(tmp_path / "a" / "b", "The folder")  # made when missing, and left empty
    assert new.is_dir() and list(new.iterdir()) == []


# --- errors the stages raise on purpose ---------------------------------------------------------------
def test_a_sample_design_on_census_data_is_a_clear_message(tiny_run, tmp_path, capsys):
    work = _copy(tiny_run, tmp_path)
    before = (work / store.RUN_FILE).read_bytes()
    assert cli.main(["index", "--processed", str(work), "--catalogue", "ikk", "--design", "sample"]) == 2
    _clear(capsys.readouterr().err, "bobot", "census")
    assert (work / store.RUN_FILE).read_bytes() == before and _leftovers(work) == []


def test_an_unknown_village_is_a_clear_message(tiny_run, tmp_path, capsys):
    assert cli.main(["report", "--village", "99.99.99.9999", "--processed", str(tiny_run),
                     "--out", str(tmp_path / "reports"), "--format", "html"]) == 2
    _clear(capsys.readouterr().err, "99.99.99.9999", "not surveyed")


# --- whatever OSError reaches the command line ------------------------------------------------------------
def test_an_os_error_at_the_top_is_a_paragraph_and_any_other_an_internal_error(monkeypatch, capsys):
    def raises(exc):
        def cmd(_args):
            raise exc
        return cmd

    monkeypatch.setattr(cli, "_cmd_dictionary", raises(PermissionError(errno.EACCES, "Permission denied",
                                                                        f"/data/{FAKE_ID}/README.md")))
    assert cli.main(["dictionary"]) == 2
    err = capsys.readouterr().err
    _clear(err, "/data/################/README.md", "permission denied")
    assert FAKE_ID not in err  # a 16-digit number (a NIK's length) never reaches a message

    monkeypatch.setattr(cli, "_cmd_dictionary", raises(OSError(errno.ENOSPC, "No space left on device")))
    assert cli.main(["dictionary"]) == 2
    _clear(capsys.readouterr().err, "the disk is full")

    monkeypatch.setattr(cli, "_cmd_dictionary", raises(OSError(errno.EBADF, "Bad file descriptor")))
    assert cli.main(["dictionary"]) == 2  # not the user's to fix: a bug, said in one line, the trace in a file
    err = capsys.readouterr().err
    assert "internal error (OSError)" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    trace = Path(err.rsplit("The full trace is in ", 1)[1].strip().rstrip("."))
    assert "Bad file descriptor" in trace.read_text()
    trace.unlink()
