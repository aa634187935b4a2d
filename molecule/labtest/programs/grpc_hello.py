"""Runs on a host: a TLS connection to ADDRESS PORT trusting CA (with the
client certificate CERT KEY if given), then HTTP/2's preface (gRPC); prints
"answered" or the error that stopped it."""

import socket
import ssl
import sys

address, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
context.check_hostname = False
context.set_alpn_protocols(["h2"])
if len(sys.argv) > 4:
    context.load_cert_chain(sys.argv[4], sys.argv[5])
try:
    with socket.create_connection((address, port), 5) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
        print("answered" if tls.recv(100) else "closed")
except Exception as error:
    print(type(error).__name__, str(error)[:120])
