"""Human evaluation: a real-or-generated study people take in a browser (HYPE-style fool rate).

store.py keeps images, participants and answers in one SQLite file; create.py draws the images;
results.py computes the fool rate with Wilson intervals and agreement; the pages and routes are in
jewelgan/serve (study_routes.py, static/study.html).
"""

from jewelgan.study.create import create_study
from jewelgan.study.results import format_results, summarise, wilson
from jewelgan.study.store import StudyError, StudyStore

__all__ = ["create_study", "summarise", "format_results", "wilson", "StudyStore", "StudyError"]
