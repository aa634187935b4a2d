"""From a host: one search with a chosen X-Forwarded-For (PROXY NAME ADDRESS
USER:PASSWORD); prints the status."""

import base64
import http.client
import ssl
import sys

proxy, name, address, credentials = sys.argv[1:5]
conn = http.client.HTTPSConnection(proxy, 443, context=ssl._create_unverified_context(), timeout=30)
authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
conn.request(
    "GET",
    "/api/2.0/mlflow/experiments/search?max_results=1",
    headers={"Host": name, "X-Forwarded-For": address, "Authorization": authorization},
)
print(conn.getresponse().status)
