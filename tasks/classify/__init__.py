"""Classify stage: reads `segments` without a label for the model; writes `segment_labels`."""

from tasks.classify.classify import ClassifierSpec, classify_segments

__all__ = ["ClassifierSpec", "classify_segments"]
