#!/usr/bin/env python3
"""Capture the first datagrams a QUIC client sends (its Initial packets) into files.

capture.py NAME COMMAND...: binds a UDP socket on 127.0.0.1, runs COMMAND with every PORT in
it replaced by the socket's port, saves each datagram that arrives as NAME-1.bin, NAME-2.bin,
... until the client has been quiet for 0.3 s (no server answers, and the client's first
retransmission comes after about a second, so only the first flight is kept), then stops the
client. Used to make the committed captures; see README.md in this folder.
"""
import socket
import subprocess
import sys

name, command = sys.argv[1], sys.argv[2:]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
port = str(sock.getsockname()[1])
client = subprocess.Popen([arg.replace("PORT", port) for arg in command],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
datagrams = []
sock.settimeout(5.0)  # the first one may take the client a moment to start
try:
    while len(datagrams) < 16:
        datagrams.append(sock.recv(65535))
        sock.settimeout(0.3)
except socket.timeout:
    pass
client.kill()
client.wait()
for i, datagram in enumerate(datagrams, 1):
    with open(f"{name}-{i}.bin", "wb") as f:
        f.write(datagram)
print(f"{name}: {len(datagrams)} datagrams of {[len(d) for d in datagrams]} bytes", file=sys.stderr)
sys.exit(0 if datagrams else 1)
