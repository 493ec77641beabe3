"""Shared texts and types for the governance tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MakeModel = Callable[..., Path]

LLAMA31_LICENSE = "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: July 23, 2024\n..."
LLAMA31_NOTICE = (
    "Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. "
    "All Rights Reserved."
)
APACHE = (
    "                                 Apache License\n                           Version 2.0, January 2004\n"
)
