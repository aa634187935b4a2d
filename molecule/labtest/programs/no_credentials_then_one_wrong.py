"""Runs on stk-outsider: COUNT requests without credentials (as a browser sends
the web manifest), then one wrong password (the marker)."""

import base64
import http.client
import ssl
import sys

host, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
wrong = {"Authorization": "Basic " + base64.b64encode(b"alice:not-her-password").decode()}
statuses = []
for headers in [{}] * count + [wrong]:
    conn = http.client.HTTPSConnection(host, 443, context=ctx, timeout=10)
    conn.request("GET", "/static-files/manifest.json", headers={"Host": name, **headers})
    statuses.append(conn.getresponse().status)
    conn.close()
print(" ".join(map(str, statuses)))
