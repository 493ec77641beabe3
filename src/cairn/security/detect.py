"""The scanner's format sniffing, kept under its old name: the code lives in :mod:`cairn.format.detect`,
the one module that tells formats from magic bytes (for readers and for the scanner alike).

:func:`sniff` returns one :data:`Kind`, the way a loader would take the bytes; see that module.
"""

from __future__ import annotations

from cairn.format.detect import (
    MAX_ARG,
    Kind,
    joblib_zfile_start,
    looks_like_pickle,
    sniff,
    unsupported_archive,
)

__all__ = ["MAX_ARG", "Kind", "joblib_zfile_start", "looks_like_pickle", "sniff", "unsupported_archive"]
