"""One GET of URL, with the Authorization header AUTHORIZATION when given
(URL [AUTHORIZATION]); prints the answer's body. HTTPS under TLS_CLIENT."""

import sys
import urllib.request

from tls_client import tls_context  # noqa: F401 (installs the HTTPS opener)

headers = {"Authorization": sys.argv[2]} if len(sys.argv) > 2 else {}
print(
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers), timeout=10).read().decode()
)
