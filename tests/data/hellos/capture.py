#!/usr/bin/env python3
"""Capture the first bytes a TLS client sends (its ClientHello records) into a file.

Listens once on 127.0.1.1 (helper H1's loopback block), prints the port, accepts one
connection, reads until the client goes quiet for a second (it is waiting for a ServerHello
that never comes), writes the bytes and closes. Used to make the committed captures; see
README.md in this folder.
"""
import socket
import sys

out = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.1.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
srv.listen(1)
srv.settimeout(60)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(1.0)
data = b""
try:
    while len(data) < 65536:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
conn.close()
with open(out, "wb") as f:
    f.write(data)
print(f"{out}: {len(data)} bytes", file=sys.stderr)
