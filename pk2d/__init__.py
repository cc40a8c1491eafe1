"""pk2d: reproducible analysis of Indonesia's family-quality programme (PK2D)."""
__version__ = "0.1.0"

from .areas import AreaEstimates, estimate_areas
from .catalogue import Catalogue, classify, load_catalogue
from .cleaning import clean
from .pipeline import build_index, load_processed, load_scores, run
from .score import score_families
from .survey import survey_mean, survey_ratio
from .synth import synthesize

__all__ = ["AreaEstimates", "Catalogue", "build_index", "classify", "clean", "estimate_areas",
           "load_catalogue", "load_processed", "load_scores", "run", "score_families", "survey_mean",
           "survey_ratio", "synthesize"]
