"""Diagnosis of failing checks: the semantic variant (reference/variants.py) that reproduces an
implementation's output, and the first place it diverges from the spec (``lstm-conformance diagnose``)."""

from .engine import Diagnosis, diagnose, first_divergence

__all__ = ["Diagnosis", "diagnose", "first_divergence"]
