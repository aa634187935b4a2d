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
import os
import sys
import tempfile
import time
import urllib.parse

from benchlib import CHUNK, add_target_args, basic_auth, connect, print_transfer, random_file, sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_args(parser, "the MLflow URL (proxy or server)")
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()

    parts = urllib.parse.urlsplit(args.url)
    headers = {"Host": args.host or parts.netloc}
    if auth := basic_auth(args):
        headers["Authorization"] = auth

    def connect_url():
        return connect(args.url, timeout=600, blocksize=CHUNK)

    path = f"/api/2.0/mlflow-artifacts/artifacts/bench/transfer-{time.time_ns()}.bin"
    size = args.size_mib * CHUNK
    with tempfile.TemporaryDirectory(prefix="bench-transfer-", dir="/var/tmp") as work:
        src, dst = os.path.join(work, "src.bin"), os.path.join(work, "dst.bin")
        random_file(src, args.size_mib)

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
    print_transfer(args.size_mib, up, down, intact)


if __name__ == "__main__":
    main()
