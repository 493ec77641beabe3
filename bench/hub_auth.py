"""What authentication costs per request, in the same run: ``HEAD /resolve`` of a small file of a
public repo and of a private organisation repo, in-process (Starlette's TestClient, one thread, no
network), best of ``--runs`` rounds of ``--requests`` requests each:

* baseline: anonymous HEAD of the public repo (no token lookup at all);
* an account-wide write token (token lookup, organisation roles, visibility);
* a fine-grained token with ``--scopes`` scopes (the matching scope is the last one);
* both tokens on the private organisation repo.

Prints requests per second and the ratio to the baseline. Usage: ``.venv/bin/python bench/hub_auth.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from cairn.hub import HubConfig, create_app
from cairn.registry import AddFile, Registry, TokenScope


def _rate(client: TestClient, url: str, token: str | None, n: int, runs: int) -> float:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    assert client.head(url, headers=headers).status_code == 200
    best = 0.0
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            client.head(url, headers=headers)
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scopes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry.open(f"sqlite:///{Path(tmp) / 'hub.db'}", str(Path(tmp) / "blobs"))
        users = registry.users
        users.create_user("ada")
        users.create_org("acme", [], admins=["ada"])
        admin = users.authenticate(users.create_token("ada"))
        blob = registry.ingest_bytes(b'{"model_type": "bert"}')
        for name, private in (("public", False), ("private", True)):
            repo = registry.repos.create(admin, "model", "acme", name, private=private)
            registry.commit(repo, "main", [AddFile("config.json", blob.sha256)], title="c", author="ada")
        account = users.create_token("ada")
        scopes = tuple(TokenScope("repo", f"acme/other{i}", "read") for i in range(args.scopes - 1))
        fine = users.create_token("ada", scopes=(*scopes, TokenScope("org", "acme", "read")))
        with TestClient(create_app(registry, HubConfig())) as client:
            url = "/acme/{}/resolve/main/config.json"
            base = _rate(client, url.format("public"), None, args.requests, args.runs)
            rows = [
                ("anonymous, public repo (baseline)", base),
                (
                    "account token, public repo",
                    _rate(client, url.format("public"), account, args.requests, args.runs),
                ),
                (
                    f"fine-grained token ({args.scopes} scopes), public repo",
                    _rate(client, url.format("public"), fine, args.requests, args.runs),
                ),
                (
                    "account token, private org repo",
                    _rate(client, url.format("private"), account, args.requests, args.runs),
                ),
                (
                    f"fine-grained token ({args.scopes} scopes), private org repo",
                    _rate(client, url.format("private"), fine, args.requests, args.runs),
                ),
            ]
        registry.close()
    for label, rate in rows:
        print(f"{label:55s} {rate:8.0f} req/s   ratio {rate / base:5.2f}")


if __name__ == "__main__":
    main()
