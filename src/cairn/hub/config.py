"""The hub's settings, declared once as data with help text (the CLI and docs read the same table)."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["HubConfig", "describe_settings"]


@dataclass(frozen=True)
class HubConfig:
    """Limits and behaviour of one hub process. Every field has a ``help`` entry in its metadata."""

    public_url: str | None = None
    """Base URL clients use (scheme://host:port[/prefix]); by default taken from each request's Host."""
    page_size: int = 1000
    """Entries per page for tree, list and commits listings (``Link: rel="next"`` beyond it)."""
    max_header_bytes: int = 64 << 10
    """Largest total size of a request's headers (larger requests get 431)."""
    max_json_bytes: int = 16 << 20
    """Largest JSON request body accepted (preupload, LFS batch, settings...)."""
    max_regular_file_bytes: int = 512 << 20
    """Largest base64-inlined ("regular") file accepted in one commit line."""
    max_commit_bytes: int = 2 << 30
    """Largest commit (NDJSON) body."""
    max_file_bytes: int = 50_000_000_000
    """Largest single file (the Hugging Face client cannot download more than 50 GB over plain HTTP)."""
    regular_upload_cap: int = 256 << 20
    """For clients >= 1.20 (which would otherwise try Xet), LFS-bound files up to this size are asked
    for as "regular" uploads instead (spec §7.6 B); 0 disables that."""
    upload_url_ttl_s: int = 3600
    """Lifetime of signed LFS upload URLs."""
    multipart_chunk_bytes: int = 512 << 20
    """LFS objects larger than this are uploaded in parts of this size (LFS multipart transfer)."""


def describe_settings() -> list[tuple[str, object, str]]:
    """(name, default, help) for every setting, from the class's attribute docstrings."""
    import ast
    import inspect

    source = inspect.getsource(HubConfig)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for i, node in enumerate(body[:-1]):
        nxt = body[i + 1]
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if is_field and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return [(f.name, f.default, docs.get(f.name, "")) for f in fields(HubConfig)]
