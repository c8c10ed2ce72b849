#!/usr/bin/env python3
"""Regenerate the NSD fixtures: serve ../zones/example.com.zone with NSD on
127.0.0.1 (high port), send each query in queries.txt, and save every reply
as <n>.bin next to this script. Needs nsd (apt-get install nsd).

    python3 crates/zone/tests/nsd/record.py
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ZONES = os.path.normpath(os.path.join(HERE, "..", "zones"))
PORT = 53541
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "HINFO": 13, "MX": 15,
         "TXT": 16, "AAAA": 28, "SRV": 33, "NAPTR": 35, "DS": 43, "CAA": 257, "DNAME": 39}


def qtype(text):
    if text.upper().startswith("TYPE"):
        return int(text[4:])
    return TYPES[text.upper()]


def query(qid, name, rtype):
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split("."))
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire + b"\0" + struct.pack(">HH", rtype, 1)


def main():
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    work = tempfile.mkdtemp(prefix="heimdall-nsd-")
    conf = os.path.join(work, "nsd.conf")
    with open(conf, "w") as out:
        out.write(f"""server:
    ip-address: 127.0.0.1@{PORT}
    do-ip6: no
    chroot: ""
    username: ""
    database: ""
    zonesdir: "{ZONES}"
    zonelistfile: "{work}/zone.list"
    xfrdfile: "{work}/xfrd.state"
    xfrdir: "{work}"
    pidfile: "{work}/nsd.pid"
    logfile: "{work}/nsd.log"
    minimal-responses: yes
remote-control:
    control-enable: no
zone:
    name: example.com
    zonefile: example.com.zone
""")
    daemon = subprocess.Popen([nsd, "-d", "-c", conf])
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1.0)
        with open(os.path.join(HERE, "queries.txt")) as listing:
            queries = [line.split() for line in listing if line.strip() and not line.startswith("#")]
        for old in os.listdir(HERE):
            if old.endswith(".bin"):
                os.remove(os.path.join(HERE, old))
        for number, (name, rtype) in enumerate(queries):
            packet = query(0x1000 + number, name, qtype(rtype))
            for attempt in range(20):
                try:
                    sock.sendto(packet, ("127.0.0.1", PORT))
                    reply, _ = sock.recvfrom(65535)
                    break
                except OSError:
                    time.sleep(0.25)
            else:
                sys.exit(f"no answer from nsd for {name} {rtype}")
            with open(os.path.join(HERE, f"{number:02}.bin"), "wb") as out:
                out.write(reply)
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
