"""Small simulated family-score tables with KNOWN built-in differences.

Villages are listed with, per indicator, the probability that a family meets
it; every family of a village gets the same applicability. Dimension scores and
the index come from pk2d.score.aggregate (itself tested by hand in
tests/test_score.py).
"""
import numpy as np
import pandas as pd

from pk2d.catalogue import load_catalogue
from pk2d.score import aggregate


def make_scores(villages, *, n=200, n_rt=8, rounds=(1,), seed=0, shift=None, catalogue="ikk"):
    """villages: {code: {indicator_id: p, ...}} (unlisted indicators: p=0.7).

    shift: {(code, round): delta} added to every indicator's probability.
    """
    cat = load_catalogue(catalogue)
    rng = np.random.default_rng(seed)
    ids = [i.id for i in cat.indicators]
    frames = []
    for rnd in rounds:
        for v, probs in villages.items():
            p = np.array([probs.get(i, 0.7) for i in ids]) + (shift or {}).get((v, rnd), 0.0)
            x = (rng.random((n, len(ids))) < np.clip(p, 0, 1)).astype(float)
            dims, comp = aggregate(x, cat)
            rt = np.arange(n) % n_rt + 1
            f = pd.DataFrame(x.astype(int), columns=ids).astype("Int8")
            f.insert(0, "id_keluarga", [f"K{v[-4:]}{i:04d}" for i in range(n)])
            f.insert(1, "putaran", rnd)
            f.insert(2, "kode_desa", v)
            f.insert(3, "nama_desa", f"Desa {v[-4:]}")
            f.insert(4, "kode_kecamatan", v[:8])
            f.insert(5, "nama_kecamatan", f"Kec {v[:8]}")
            f.insert(6, "kode_kabupaten", v[:5])
            f.insert(7, "kode_rt", [f"{v}.{r:03d}" for r in rt])
            for j, ind in enumerate(ids):
                f[f"berlaku_{ind}"] = True
            for j, d in enumerate(cat.dimensions):
                f[f"dim_{d.id}"] = dims[:, j]
            f["indeks"] = comp
            frames.append(f)
    return pd.concat(frames, ignore_index=True)
