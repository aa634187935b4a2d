"""Lists the bucket "mlflow" under a prefix: ENDPOINT PREFIX; the keys in
KEY and SECRET, the CA that checks the endpoint in CA. Prints a JSON list."""

import json
import os
import sys

import boto3
from botocore.config import Config

s3 = boto3.client(
    "s3",
    endpoint_url=sys.argv[1],
    region_name="us-east-1",
    verify=os.environ["CA"],
    aws_access_key_id=os.environ["KEY"],
    aws_secret_access_key=os.environ["SECRET"],
    config=Config(s3={"addressing_style": "path"}),
)
pages = s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow", Prefix=sys.argv[2])
print(json.dumps([o["Key"] for page in pages for o in page.get("Contents", [])]))
