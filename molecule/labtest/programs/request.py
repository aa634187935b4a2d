"""Runs on the host under AS_PROXY: one request straight to MLflow. REQUEST
METHOD PATH HEADERS_JSON [BODY]; prints the HTTP status."""

import http.client
import json
import sys

from tls_client import tls_context

conn = http.client.HTTPSConnection("127.0.0.1", 5000, context=tls_context(), timeout=30)
conn.request(sys.argv[1], sys.argv[2], body=(sys.argv[4:] or [None])[0], headers=json.loads(sys.argv[3]))
print(conn.getresponse().status)
