"""GETs over two kept-alive connections, in turn, the first five of each not
counted; prints the median ms of each, "PLAIN QUICKACK". The second
connection ACKs every segment at once (TCP_QUICKACK, set again before each
answer is read: Linux clears it), so it never meets Nagle's stall; the first
is what nginx's pooled connections see. Taken in turn, both pay the same
load. Arguments: ADDRESS PORT HOST_HEADER; HTTPS under TLS_CLIENT;
AUTHORIZATION: the header's value, for MLflow's auth app."""

import http.client
import os
import socket
import statistics
import sys
import time

from tls_client import tls_context

context = tls_context()


def connect():
    if context:
        return http.client.HTTPSConnection(sys.argv[1], int(sys.argv[2]), timeout=30, context=context)
    return http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=30)


headers = {"Host": sys.argv[3]}
if "AUTHORIZATION" in os.environ:
    headers["Authorization"] = os.environ["AUTHORIZATION"]
connections = {"plain": connect(), "quickack": connect()}
taken = {name: [] for name in connections}
for _ in range(30):
    for name, conn in connections.items():
        began = time.perf_counter()
        conn.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
        if name == "quickack":
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        taken[name].append(time.perf_counter() - began)
print(*(statistics.median(values[5:]) * 1000 for values in taken.values()))
