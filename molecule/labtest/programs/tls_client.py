"""HTTPS for urllib and tls_context() from TLS_CLIENT=CA[:CERTIFICATE:KEY]
(unset: the defaults). Programs that need it start with
`from tls_client import tls_context`, which labtest.hosts.program() replaces
with this file: the lab's hosts get one self-contained program."""

import os
import ssl
import urllib.request


def tls_context():
    if not os.environ.get("TLS_CLIENT"):
        return None
    ca, *certificate_and_key = os.environ["TLS_CLIENT"].split(":")
    context = ssl.create_default_context(cafile=ca)
    if certificate_and_key:
        context.load_cert_chain(*certificate_and_key)
    return context


urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls_context())))
