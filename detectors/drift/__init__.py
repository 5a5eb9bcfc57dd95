"""Drift detection per stream key: embedding drift (MMD² permutation test) and scalar drift (river).

See :mod:`detectors.drift.detector` for the detector, :mod:`.embedding` for the test,
:mod:`.reference` for the reference policies and :mod:`.scalar` for the river signals.
"""
from __future__ import annotations

from .detector import DriftDetector, DriftReport

__all__ = ["DriftDetector", "DriftReport"]
