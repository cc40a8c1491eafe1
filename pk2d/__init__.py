"""pk2d: reproducible analysis of Indonesia's family-quality programme (PK2D).

The public API; each name is imported from its module on first use, so
``import pk2d`` stays fast for report kernels (no scipy or pandera until needed).
"""
__version__ = "0.1.0"

_API = {
    "open_run": "store", "Run": "store",
    "clean": "pipeline", "build_index": "pipeline", "build_compare": "pipeline", "run": "pipeline",
    "load_processed": "pipeline", "load_scores": "pipeline", "family_distribution": "pipeline",
    "build_reports": "report.batch",
    "synthesize": "synth",
    "load_catalogue": "catalogue", "classify": "catalogue", "Catalogue": "catalogue",
    "score_families": "score", "estimate_areas": "areas", "AreaEstimates": "areas",
    "survey_mean": "survey", "survey_means": "survey", "survey_ratio": "survey",
    "Design": "design", "design_from_scores": "design", "ReplicateDesign": "replicate",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pk2d' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
