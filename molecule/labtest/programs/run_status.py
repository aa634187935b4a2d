"""Runs on the proxy (the only host let in, AS_PROXY): the run's status, as a
server reads it from the database. URL RUN_ID HOST_HEADER."""

import json
import sys
import urllib.request

from tls_client import tls_context  # noqa: F401 (installs the HTTPS opener)

request = urllib.request.Request(
    f"{sys.argv[1]}/api/2.0/mlflow/runs/get?run_id={sys.argv[2]}", headers={"Host": sys.argv[3]}
)
print(json.load(urllib.request.urlopen(request, timeout=30))["run"]["info"]["status"])
