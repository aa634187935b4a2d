"""Runs on the client container with its own boto3: one S3 call, JSON out.
ARGUMENTS: one JSON object (op, endpoint, key, secret, bucket, k, body, path)."""

import json
import sys

import boto3
import botocore
from botocore.config import Config

a = json.loads(sys.argv[1])
s3 = boto3.client(
    "s3",
    endpoint_url=a["endpoint"],
    aws_access_key_id=a["key"],
    aws_secret_access_key=a["secret"],
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
)
try:
    if a["op"] == "put":
        s3.put_object(Bucket=a["bucket"], Key=a["k"], Body=a["body"].encode())
        out = "ok"
    elif a["op"] == "get":
        out = s3.get_object(Bucket=a["bucket"], Key=a["k"])["Body"].read().decode()
    elif a["op"] == "list":
        page = s3.list_objects_v2(Bucket=a["bucket"], Prefix=a["k"])
        out = [o["Key"] for o in page.get("Contents", [])]
    elif a["op"] == "delete":
        s3.delete_object(Bucket=a["bucket"], Key=a["k"])
        out = "ok"
    elif a["op"] == "roundtrip":
        s3.upload_file(a["path"], a["bucket"], a["k"])
        s3.download_file(a["bucket"], a["k"], a["path"] + ".back")
        out = "ok"
    print(json.dumps({"ok": True, "result": out}))
except botocore.exceptions.ClientError as e:
    meta = e.response["ResponseMetadata"]
    print(json.dumps({"ok": False, "status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"]}))
except botocore.exceptions.BotoCoreError as e:
    print(json.dumps({"ok": False, "status": 0, "code": type(e).__name__}))
