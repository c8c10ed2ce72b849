#!/usr/bin/env python3
"""Receive-buffer accounting of UDP GSO segments against plain datagrams on
loopback (the figure behind `server.udp_gso`'s note in docs/TUNING.md).

Sends N datagrams of SIZE bytes to a socket on 127.0.0.1 that does not
read them, once as N sendto calls and once as one GSO send (UDP_SEGMENT),
and prints the receive memory the kernel charged to the socket for each
(`ss -m`, the skmem r field), per datagram. Needs Linux 4.18+ and ss
(iproute2). Usage: benches/peers/gso-rcvbuf.py [N] [SIZE]
"""
import re
import socket
import struct
import subprocess
import sys

UDP_SEGMENT = 103
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 8
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 100

receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind(("127.0.0.1", 0))
target = receiver.getsockname()


def charged() -> int:
    out = subprocess.run(
        ["ss", "-uamn", "src", f"127.0.0.1:{target[1]}"],
        capture_output=True, text=True, check=True,
    ).stdout
    match = re.search(r"skmem:\(r(\d+)", out)
    return int(match.group(1)) if match else 0


def drain() -> int:
    got = 0
    while True:
        try:
            receiver.recv(65536, socket.MSG_DONTWAIT)
            got += 1
        except BlockingIOError:
            return got


payload = b"x" * SIZE
for _ in range(COUNT):
    sender.sendto(payload, target)
plain = charged()
assert drain() == COUNT
sender.sendmsg([payload * COUNT], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("H", SIZE))], 0, target)
gso = charged()
assert drain() == COUNT, "the GSO send did not arrive as separate datagrams"
print(f"{COUNT} x {SIZE} bytes: plain {plain} bytes ({plain / COUNT:.0f} per datagram), "
      f"GSO {gso} bytes ({gso / COUNT:.0f} per datagram), GSO/plain {gso / plain:.3f}")
