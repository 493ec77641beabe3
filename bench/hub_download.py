"""Hub download throughput and ``resolve`` HEAD rate, against plain file servers, in the same run.

Serves one file of ``--size-mib`` MiB three ways over loopback and downloads it with httpx (streamed,
discarded), best of ``--runs``:

* cairn: ``cairn serve`` (SQLite + local blobs), ``GET /{repo}/resolve/main/{file}``;
* baseline 1: ``python -m http.server`` serving the same bytes;
* baseline 2: a Starlette ``StaticFiles`` app under uvicorn (the same ASGI stack without the hub).

Then ``HEAD /resolve`` requests per second and p99 latency with ``--concurrency`` concurrent clients.
Prints throughputs and ratios (cairn / baseline). Usage: ``.venv/bin/python bench/hub_download.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchutil import free_port, wait

BIN = Path(sys.executable).parent


def download(url: str, runs: int, headers: dict[str, str] | None = None) -> float:
    best = float("inf")
    size = 0
    with httpx.Client(timeout=120) as client:
        for _ in range(runs):
            start = time.perf_counter()
            size = 0
            with client.stream("GET", url, headers=headers) as resp:
                resp.raise_for_status()
                for chunk in resp.iter_raw(1 << 20):
                    size += len(chunk)
            best = min(best, time.perf_counter() - start)
    return size / best / 2**20


async def head_load(url: str, concurrency: int, seconds: float) -> tuple[float, float]:
    """HEAD ``url`` over ``concurrency`` keep-alive connections for ``seconds``; (req/s, p99 ms).

    A raw asyncio client (write the request, read to the blank line) so that the load generator costs
    far less CPU than the server it measures: both share this machine's cores.
    """
    parts = httpx.URL(url)
    request = (
        f"HEAD {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
        "Accept-Encoding: identity\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head[:200].decode(errors="replace"))
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000


STATIC_APP = """
import sys, tempfile, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

async def put(request):
    with tempfile.TemporaryFile(dir=sys.argv[1]) as f:
        async for chunk in request.stream():
            f.write(chunk)
    return Response(status_code=200)

app = Starlette(routes=[Route("/put", put, methods=["PUT"]), Mount("/", StaticFiles(directory=sys.argv[1]))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


def start_nginx(tmp: Path, root: Path, port: int) -> subprocess.Popen[bytes] | None:
    """nginx serving ``root`` on ``port``, or None when nginx is not installed (apt-get install nginx-light)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        return None
    for folder in (tmp, root):  # nginx workers drop to an unprivileged user; mkdtemp made tmp 0700
        folder.chmod(0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, root=root, port=port))
    return subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cairn-bench-"))
    data = tmp / "data"
    plain = tmp / "plain"
    plain.mkdir()
    payload = plain / "model.safetensors"
    with payload.open("wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(1 << 20))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    token = json.loads(
        subprocess.run(
            [str(BIN / "cairn"), "admin", "create-user", "bench", "--data", str(data), "--json"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    )["token"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        hub_port, http_port, static_port = free_port(), free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [str(BIN / "cairn"), "serve", "--port", str(hub_port), "--data", str(data)],
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(http_port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(plain),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        procs.append(subprocess.Popen([sys.executable, "-c", STATIC_APP, str(plain), str(static_port)]))
        hub = f"http://127.0.0.1:{hub_port}"
        for url, proc in (
            (hub + "/api/models", procs[0]),
            (f"http://127.0.0.1:{http_port}/", procs[1]),
            (f"http://127.0.0.1:{static_port}/model.safetensors", procs[2]),
        ):
            wait(url, proc)
        nginx_port = free_port()
        nginx = start_nginx(tmp, plain, nginx_port)
        if nginx is not None:
            procs.append(nginx)
            wait(f"http://127.0.0.1:{nginx_port}/model.safetensors", nginx)
        hub_up = upload(hub, token, payload)
        start = time.perf_counter()
        with payload.open("rb") as f:
            httpx.put(
                f"http://127.0.0.1:{static_port}/put",
                content=f,
                timeout=600,
                headers={"content-length": str(payload.stat().st_size)},
            ).raise_for_status()
        raw_up = payload.stat().st_size / (time.perf_counter() - start) / 2**20
        print(f"upload of {args.size_mib} MiB over loopback:")
        print(f"  cairn LFS PUT (hash + verify + store) {hub_up:8.0f} MiB/s")
        print(
            f"  raw PUT to a file (Starlette)        {raw_up:8.0f} MiB/s   ratio cairn/baseline {hub_up / raw_up:.2f}x"
        )
        resolve = f"{hub}/bench/model/resolve/main/model.safetensors"
        cairn = download(resolve, args.runs)
        http_server = download(f"http://127.0.0.1:{http_port}/model.safetensors", args.runs)
        static = download(f"http://127.0.0.1:{static_port}/model.safetensors", args.runs)
        print(f"download of {args.size_mib} MiB over loopback, best of {args.runs}:")
        print(f"  cairn resolve              {cairn:8.0f} MiB/s")
        print(
            f"  python -m http.server      {http_server:8.0f} MiB/s   ratio cairn/baseline {cairn / http_server:.2f}x"
        )
        print(
            f"  Starlette StaticFiles      {static:8.0f} MiB/s   ratio cairn/baseline {cairn / static:.2f}x"
        )
        if nginx is not None:
            ngx = download(f"http://127.0.0.1:{nginx_port}/model.safetensors", args.runs)
            print(f"  nginx (sendfile)           {ngx:8.0f} MiB/s   ratio cairn/baseline {cairn / ngx:.2f}x")
        else:
            print("  nginx                      not installed (apt-get install nginx-light) - skipped")
        rps, p99 = asyncio.run(head_load(resolve, args.concurrency, args.seconds))
        print(
            f"resolve HEAD, {args.concurrency} concurrent clients, {args.seconds:.0f} s: {rps:.0f} req/s, p99 {p99:.1f} ms"
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def upload(hub: str, token: str, payload: Path) -> float:
    """Publish the payload through the hub's own LFS upload path (create repo, batch, PUT, commit)."""
    import hashlib

    headers = {"authorization": f"Bearer {token}"}
    sha = hashlib.sha256()
    with payload.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    oid, size = sha.hexdigest(), payload.stat().st_size
    with httpx.Client(base_url=hub, headers=headers, timeout=600) as c:
        c.post("/api/repos/create", json={"name": "model"}).raise_for_status()
        batch = c.post(
            "/bench/model.git/info/lfs/objects/batch",
            json={"operation": "upload", "objects": [{"oid": oid, "size": size}]},
        ).json()
        href = batch["objects"][0]["actions"]["upload"]["href"]
        start = time.perf_counter()
        with payload.open("rb") as f:
            httpx.put(href, content=f, headers={"content-length": str(size)}, timeout=600).raise_for_status()
        rate = size / (time.perf_counter() - start) / 2**20
        line = json.dumps(
            {
                "key": "lfsFile",
                "value": {"path": "model.safetensors", "algo": "sha256", "oid": oid, "size": size},
            }
        )
        body = json.dumps({"key": "header", "value": {"summary": "bench"}}) + "\n" + line + "\n"
        c.post("/api/models/bench/model/commit/main", content=body).raise_for_status()
    return rate


if __name__ == "__main__":
    main()
