"""One large artifact up and down through MLflow's artifact API
(/api/2.0/mlflow-artifacts/artifacts/PATH): a PUT of SIZE MiB of random
bytes, then a GET of it to a file, each timed; the copy is compared with the
original (sha256, not timed).

Standard library only, so it runs on the controller (through the proxy) and
on the proxy host (straight to an MLflow server). The password comes on stdin
(--password-stdin). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.parse

from benchlib import CHUNK, connect, sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the MLflow URL (proxy or server)")
    parser.add_argument("--host", help="Host header (default: the URL's)")
    parser.add_argument("--user")
    parser.add_argument("--password-stdin", action="store_true")
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()

    parts = urllib.parse.urlsplit(args.url)
    headers = {"Host": args.host or parts.netloc}
    if args.user:
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
        headers["Authorization"] = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()

    def connect_url():
        return connect(args.url, timeout=600, blocksize=CHUNK)

    path = f"/api/2.0/mlflow-artifacts/artifacts/bench/transfer-{time.time_ns()}.bin"
    size = args.size_mib * CHUNK
    with tempfile.TemporaryDirectory(prefix="bench-transfer-", dir="/var/tmp") as work:
        src, dst = os.path.join(work, "src.bin"), os.path.join(work, "dst.bin")
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(CHUNK))

        conn = connect_url()
        began = time.perf_counter()
        with open(src, "rb") as body:
            conn.request("PUT", path, body=body, headers={**headers, "Content-Length": str(size)})
            response = conn.getresponse()
            response.read()
        up = time.perf_counter() - began
        if response.status != 200:
            sys.exit(f"PUT {path}: HTTP {response.status}")

        conn = connect_url()
        began = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            sys.exit(f"GET {path}: HTTP {response.status}")
        with open(dst, "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
        down = time.perf_counter() - began

        intact = os.path.getsize(dst) == size and sha256(src) == sha256(dst)
        conn = connect_url()
        conn.request("DELETE", path, headers=headers)
        conn.getresponse().read()
    print(
        json.dumps(
            {
                "size_mib": args.size_mib,
                "upload_mib_s": args.size_mib / up,
                "download_mib_s": args.size_mib / down,
                "upload_s": up,
                "download_s": down,
                "intact": intact,
            }
        )
    )


if __name__ == "__main__":
    main()
