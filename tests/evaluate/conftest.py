"""Fixtures of the evaluate tests; they live in fairness_fixtures.py."""

from fairness_fixtures import planted, planted_files

__all__ = ["planted", "planted_files"]
