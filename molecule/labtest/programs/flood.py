"""Runs on stk-outsider: wrong passwords for alice (bcrypt, the costly case) at
RATE requests/s for SECONDS, over kept-alive connections."""

import base64
import http.client
import json
import ssl
import sys
import threading
import time

host, rate, seconds, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
headers = {"Host": name, "Authorization": "Basic " + base64.b64encode(b"alice:not-her-password").decode()}
counts = {"sent": 0, "answered_401": 0, "failed": 0}
lock = threading.Lock()
end = time.time() + seconds
threads = 16


def worker():
    conn, due = None, time.time()
    while time.time() < end:
        with lock:
            counts["sent"] += 1
        try:
            conn = conn or http.client.HTTPSConnection(host, 443, context=ctx, timeout=2)
            conn.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                counts["answered_401" if response.status == 401 else "failed"] += 1
        except Exception:
            conn = None
            with lock:
                counts["failed"] += 1
        due += threads / rate
        time.sleep(max(0.0, due - time.time()))


pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(json.dumps(counts))
