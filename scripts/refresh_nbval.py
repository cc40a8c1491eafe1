"""Copy the outputs of `# NBVAL_CHECK_OUTPUT` cells from executed notebooks into the sources.

`make test` runs `pytest --nbval-lax notebooks`, which compares only cells marked
`# NBVAL_CHECK_OUTPUT` against their stored outputs. After a deliberate change of
the numbers (catalogue, sample), run `make run` and then
`make refresh-nbval`; review the diff before committing. Every other cell is
stored without outputs.
"""
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"


def refresh(source: Path, executed: Path) -> int:
    src = nbformat.read(source, as_version=4)
    ran = nbformat.read(executed, as_version=4)
    by_source = {c.source: c for c in ran.cells if c.cell_type == "code"}
    changed = 0
    for cell in src.cells:
        if cell.cell_type != "code":
            continue
        checked = cell.source.startswith(MARK)
        new = by_source[cell.source].outputs if checked else []
        if cell.outputs != new:
            changed += 1
        cell.outputs = new
        # nbval refuses "unrun" cells with outputs: checked cells keep their execution count
        cell.execution_count = by_source[cell.source].execution_count if checked else None
    nbformat.write(src, source)
    return changed


#: report templates run by the batch: their executed copy for the default parameters
REPORT_COPIES = {"10_village_report.ipynb": "desa/63.02.06.2012-*.ipynb", "11_district_report.ipynb": "kabupaten/63.02-*.ipynb",
                 "12_province_report.ipynb": "provinsi/63-*.ipynb"}


if __name__ == "__main__":
    executed_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "reports" / "_executed"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        ex = executed_dir / nb.name
        if nb.name in REPORT_COPIES:
            ex = next(executed_dir.glob(REPORT_COPIES[nb.name]), ex)
        if ex.exists():
            print(f"{nb.name}: {refresh(nb, ex)} cell(s) updated")
        else:
            print(f"{nb.name}: no executed copy in {executed_dir}, left as is")
