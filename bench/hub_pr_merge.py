"""What merging a pull request costs next to committing the same change directly, in the same run, on
SQLite and a local blob directory (registry calls, no HTTP): a repo of ``--files`` small files; a PR
changes ``--changed`` of them while ``main`` gains one unrelated commit, then the PR is merged (three-way
merge of three full trees, one commit through the trust hooks).

* baseline: one ordinary commit of the same ``--changed`` files to ``main``;
* merge: ``merge_pull_request`` of the PR.

Prints the median of ``--runs`` rounds of each and the ratio. Usage:
``.venv/bin/python bench/hub_pr_merge.py [--files 5000] [--changed 10] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cairn.registry import AddFile, Registry
from cairn.registry.pulls import commit_to_pull_request, merge_pull_request, open_pull_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry.open(f"sqlite:///{Path(tmp) / 'hub.db'}", str(Path(tmp) / "blobs"))
        reg.users.create_user("alice")
        reg.users.create_user("bob")
        alice = reg.users.authenticate(reg.users.create_token("alice"))
        bob = reg.users.authenticate(reg.users.create_token("bob"))
        repo = reg.repos.create(alice, "model", "alice", "bench", private=False)
        blobs = [reg.ingest_bytes(f"file {i}".encode(), repo_id=repo.id) for i in range(args.files)]
        reg.commit(
            repo,
            "main",
            [AddFile(f"f/{i}.txt", b.sha256) for i, b in enumerate(blobs)],
            title="base",
            author="alice",
        )
        direct, merged = [], []
        for run in range(args.runs):
            change = [
                reg.ingest_bytes(f"run {run} {i}".encode(), repo_id=repo.id) for i in range(args.changed)
            ]
            ops = [AddFile(f"f/{i}.txt", b.sha256) for i, b in enumerate(change)]
            start = time.perf_counter()
            reg.commit(repo, "main", ops, title=f"direct {run}", author="alice")
            direct.append(time.perf_counter() - start)
            change = [
                reg.ingest_bytes(f"pr {run} {i}".encode(), repo_id=repo.id) for i in range(args.changed)
            ]
            pr = open_pull_request(reg, repo, bob, f"bench pr {run}", None)
            ops = [AddFile(f"f/{i + args.changed}.txt", b.sha256) for i, b in enumerate(change)]
            commit_to_pull_request(reg, repo, bob, pr, ops, title="pr")
            other = reg.ingest_bytes(f"main {run}".encode(), repo_id=repo.id)
            reg.commit(repo, "main", [AddFile(f"main-{run}.txt", other.sha256)], title="main", author="alice")
            start = time.perf_counter()
            merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
            merged.append(time.perf_counter() - start)
        reg.close()
    d, m = statistics.median(direct), statistics.median(merged)
    print(f"{args.files} files, {args.changed} changed, median of {args.runs}")
    print(f"direct commit  {d * 1000:8.1f} ms")
    print(f"merge PR       {m * 1000:8.1f} ms   ratio {m / d:.2f}")


if __name__ == "__main__":
    main()
