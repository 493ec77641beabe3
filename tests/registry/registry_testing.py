"""Helpers of the registry tests (a module with a unique name, so test modules never import conftest)."""

from __future__ import annotations

from cairn.registry import Principal, Registry

__all__ = ["make_user"]


def make_user(reg: Registry, name: str) -> Principal:
    """A new user ``name``, authenticated with a fresh token of theirs."""
    reg.users.create_user(name)
    return reg.users.authenticate(reg.users.create_token(name))
