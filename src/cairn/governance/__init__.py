"""Governance: licenses along the lineage, model cards, openness class and AI bills of materials.

Pure functions over files and metadata; this package imports only :mod:`cairn.format` and shared types.
Data flows: a model (a :class:`~cairn.governance.lineage.ModelSource`) → :func:`~cairn.governance.lineage.walk`
builds its lineage graph through a pluggable :class:`~cairn.governance.lineage.Resolver` →
:func:`~cairn.governance.check.check_lineage` evaluates the license knowledge base
(``data/licenses.json``, :mod:`cairn.governance.licenses`) over it. The card, openness, BOM and
fingerprint modules read the same sources. Results are screening aids and never say "compliant".
Submodules are imported on use, so ``import cairn.governance`` stays light.
"""

from __future__ import annotations

__all__: list[str] = []
