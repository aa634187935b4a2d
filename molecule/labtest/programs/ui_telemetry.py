"""Runs on the proxy: what a server's UI telemetry endpoint says to an empty
batch of records ("success" while MLflow's telemetry is on). URL
HOST_HEADER."""

import json
import sys
import urllib.request

from tls_client import tls_context  # noqa: F401 (installs the HTTPS opener)

request = urllib.request.Request(
    f"{sys.argv[1]}/ajax-api/3.0/mlflow/ui-telemetry",
    data=b'{"records": []}',
    headers={"Host": sys.argv[2], "Content-Type": "application/json"},
)
print(json.load(urllib.request.urlopen(request, timeout=30))["status"])
