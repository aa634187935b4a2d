"""One large object up and down straight to an S3 API with boto3, as MLflow's
artifact proxy sends it (boto3's default transfer settings): an upload of SIZE
MiB of random bytes, a download to a file, each timed; the copy is compared
with the original (sha256, not timed). Prints one JSON object.

Runs where boto3 is, e.g. an MLflow host's venv, the only hosts the firewall
lets reach the S3 server:
    python bench/s3_throughput.py --env-file /etc/mlflow/mlflow.env --bucket mlflow
reads the endpoint, keys and region from the server's environment file (as its
entry point does: no secret on the command line), or from the usual AWS_*
variables and --endpoint.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from benchlib import load_env_file, print_transfer, random_file, sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", help="an MLflow server's environment file")
    parser.add_argument("--endpoint", help="default: MLFLOW_S3_ENDPOINT_URL")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    if args.env_file:
        load_env_file(args.env_file)

    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=args.endpoint or os.environ.get("MLFLOW_S3_ENDPOINT_URL"),
        config=Config(s3={"addressing_style": os.environ.get("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "path")}),
    )
    key = f"bench/s3-throughput-{time.time_ns()}.bin"
    with tempfile.TemporaryDirectory(prefix="bench-s3-", dir="/var/tmp") as work:
        src, dst = os.path.join(work, "src.bin"), os.path.join(work, "dst.bin")
        random_file(src, args.size_mib)
        began = time.perf_counter()
        s3.upload_file(src, args.bucket, key)
        up = time.perf_counter() - began
        began = time.perf_counter()
        s3.download_file(args.bucket, key, dst)
        down = time.perf_counter() - began
        intact = sha256(src) == sha256(dst)
        s3.delete_object(Bucket=args.bucket, Key=key)
    print_transfer(args.size_mib, up, down, intact)


if __name__ == "__main__":
    main()
