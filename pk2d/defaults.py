"""Every default of pk2d in one place: the CLI, the notebooks and the functions read them here.

A stage records the values it actually used in the run record
(:mod:`pk2d.store`), so a report can always say which seed, how many draws
and which cut-offs made each number.

>>> SEED, N_BOOT, N_RUNS, JOBS, MIN_CELL
(20240710, 999, 500, 2, 5)
"""
from __future__ import annotations

#: seed of every random draw (bootstrap, Monte Carlo); each kabupaten and round gets its own
#: stream derived from it, so adding a kabupaten never changes another one's results
SEED = 20240710
#: bootstrap replicates for league-table and rank intervals
N_BOOT = 999
#: Monte Carlo runs of the sensitivity analysis over the method choices
N_RUNS = 500
#: reports rendered in parallel
JOBS = 2
#: cells (RT, counts) with fewer families than this are suppressed in published tables
MIN_CELL = 5
#: confidence level of every interval
LEVEL = 0.95
#: catalogues the index stage computes
CATALOGUES = ("ikk", "ibangga")
#: the catalogue reports are about
REPORT_CATALOGUE = "ikk"
#: report formats: the page, its PDF, the Word document, the agencies' workbook (villages)
FORMATS = ("html", "pdf", "docx", "xlsx")
#: report language
LANG = "id"
#: the round everywhere (CLI, notebooks, reports) when none is given: the latest in the run
ROUND = None
#: the analysts' workbook (indeks.xlsx) leaves out the RT rows of a catalogue's areas sheet beyond this many
#: rows (a province or national run); every RT stays in the areas table
WORKBOOK_MAX_ROWS = 20_000
#: a village report lists at most this many villages of its kecamatan in the position table
KECAMATAN_MAX = 40
#: strengths and weaknesses (priorities) shown per village
TOP = 5
