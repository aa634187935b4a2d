"""S3 upload/download throughput of one large object (prints figures, asserts nothing).

Usage (anywhere boto3 is installed, e.g. a client container or the controller):
    python3 bench/s3_throughput.py --endpoint http://HOST:8333 --bucket mlflow \
        --access-key KEY --secret-key SECRET [--size-mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    s3 = boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        region_name=args.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    key = f"bench/throughput-{args.size_mib}MiB.bin"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "src.bin"), os.path.join(tmp, "dst.bin")
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        print(f"object: {args.size_mib} MiB, endpoint {args.endpoint}, {args.repeat} rounds")
        for i in range(1, args.repeat + 1):
            start = time.perf_counter()
            s3.upload_file(src, args.bucket, key)
            up = time.perf_counter() - start
            start = time.perf_counter()
            s3.download_file(args.bucket, key, dst)
            down = time.perf_counter() - start
            same = hashlib.sha256(Path(dst).read_bytes()).hexdigest() == digest
            print(
                f"round {i}: upload {args.size_mib / up:7.1f} MiB/s ({up:5.2f} s)  "
                f"download {args.size_mib / down:7.1f} MiB/s ({down:5.2f} s)  intact={same}"
            )
        s3.delete_object(Bucket=args.bucket, Key=key)


if __name__ == "__main__":
    main()
