"""Scoring (`longdoc evaluate`'s metrics): reads a labelled reference file, `document_results`
and the first-segment baseline; writes `evaluations`. Named apart from flows/evaluate.py, the flow."""

from tasks.scoring.scoring import evaluate_run, read_references, side_by_side

__all__ = ["evaluate_run", "read_references", "side_by_side"]
