"""The image's HEALTHCHECK: exit 0 when the server in this container answers GET /healthz with 200.

Run by podman inside the container (python3 -I: no user site, no environment paths). It asks the
loopback address on DATASITE_PORT; over https (DATASITE_TLS_CERT set) the certificate is not
checked, since it names the public host, not 127.0.0.1, and this only asks whether the process
answers.
"""

import os
import ssl
import sys
import urllib.request


def main():
    port = os.environ.get("DATASITE_PORT", "8080")
    scheme = "https" if os.environ.get("DATASITE_TLS_CERT") else "http"
    context = None
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = "{}://127.0.0.1:{}/healthz".format(scheme, port)
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as resp:
            status = resp.status
    except OSError as err:
        print("unhealthy: {}: {}".format(url, err))
        return 1
    if status != 200:
        print("unhealthy: {} answered {}".format(url, status))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
