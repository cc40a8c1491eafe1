"""The baseline the report batch is measured against: what an analyst does by hand.

One report after another: ``python -m papermill`` on the template, then ``python -m nbconvert --to
html --no-input`` on the executed copy (same Python, the CLIs' own entry points), HTML only, no
skipping, no parallelism. For benchmarks only.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable


def plain_serial(units: Iterable, out_dir: str | Path) -> dict:
    """Run the loop over ``units`` (:class:`pk2d.render.ReportUnit`); ``{"units", "seconds", "per_unit"}``."""
    out_dir = Path(out_dir)
    per_unit = []
    t_all = time.perf_counter()
    for u in units:
        folder = out_dir / u.kind
        folder.mkdir(parents=True, exist_ok=True)
        executed = folder / f"{u.stem}.ipynb"
        params = {k: v for k, v in u.parameters.items() if k != "run_id"}  # an analyst opens the current run
        t = time.perf_counter()
        for cmd in ([sys.executable, "-m", "papermill", str(u.template), str(executed), "-y", json.dumps(params),
                     "--no-progress-bar", "--cwd", str(u.template.resolve().parent)],
                    [sys.executable, "-m", "nbconvert", "--to", "html", "--no-input", "--output-dir", str(folder),
                     str(executed)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = " / ".join(done.stderr.strip().splitlines()[-2:])
                raise RuntimeError(f"{u.label}: baseline step {cmd[2]} failed: {tail[:300]}")
        per_unit.append(time.perf_counter() - t)
    return {"units": len(per_unit), "seconds": time.perf_counter() - t_all, "per_unit": per_unit}
