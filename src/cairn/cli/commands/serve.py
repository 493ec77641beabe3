"""``cairn serve``: run the hub (Hugging Face–compatible API and web UI) with uvicorn.

Storage is configured in one place, :func:`storage_urls`, with this precedence: flag, environment
(``CAIRN_DATA``, ``CAIRN_DB``, ``CAIRN_BLOBS``), default (SQLite and a blob directory under
``./cairn-data``). ``cairn admin`` uses the same options, so both see the same data.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_OK
from cairn.cli.trust_admin import add_trust_options, trust_policy

__all__ = ["add_storage_options", "register", "storage_urls"]

DEFAULT_DATA = "./cairn-data"


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help=f"data directory for the defaults below (env CAIRN_DATA; default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL, sqlite:///PATH or postgresql://... (env CAIRN_DB; default DATA/hub.db)",
    )
    parser.add_argument(
        "--blobs",
        metavar="URL",
        help="blob store: a directory or s3://BUCKET/PREFIX?endpoint=URL (env CAIRN_BLOBS; default DATA/blobs)",
    )


def storage_urls(args: argparse.Namespace) -> tuple[str, str]:
    """(database URL, blob store URL) from flags, then environment, then defaults."""
    data = Path(args.data or os.environ.get("CAIRN_DATA") or DEFAULT_DATA)
    db = args.db or os.environ.get("CAIRN_DB") or f"sqlite:///{(data / 'hub.db').absolute()}"
    blobs = args.blobs or os.environ.get("CAIRN_BLOBS") or str((data / "blobs").absolute())
    return db, blobs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the hub: a Hugging Face–compatible registry and web UI",
        description="Run the hub. Point clients at it with HF_ENDPOINT=http://HOST:PORT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--public-url", metavar="URL", help="base URL clients use, if not the request's Host")
    parser.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="path prefix a reverse proxy serves the hub under (e.g. /hub)",
    )
    add_storage_options(parser)
    add_trust_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cairn.hub import HubConfig, create_app
    from cairn.registry import Registry

    db, blobs = storage_urls(args)
    registry = Registry.open(db, blobs, trust=trust_policy(args))
    app = create_app(registry, HubConfig(public_url=args.public_url))
    url = args.public_url or f"http://{args.host}:{args.port}{args.root_path}"
    prog = sys.argv[0] if Path(sys.argv[0]).name == "cairn" else "cairn"
    admin = f"{prog} admin create-user NAME"
    if args.data or args.db or args.blobs:
        admin += "".join(
            f" --{k} {v}" for k, v in (("data", args.data), ("db", args.db), ("blobs", args.blobs)) if v
        )
    sys.stderr.write(
        f"cairn hub listening on {url}\n"
        f"  database: {db}\n  blobs:    {blobs}\n"
        f"  create a user and write token:  {admin}\n"
        f"  use it from Hugging Face clients:  export HF_ENDPOINT={url} HF_TOKEN=<token>\n"
        f"  (huggingface_hub >= 1.20 uploading files over {HubConfig().regular_upload_cap >> 20} MiB: "
        "export HF_HUB_DISABLE_XET=1)\n"
    )
    sys.stderr.flush()
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            root_path=args.root_path,
            log_level="warning",
            access_log=False,
        )
    finally:
        registry.close()
    return EXIT_OK
