#!/usr/bin/env python3
"""One result row (TSV) from one run of benches/peers/compare.sh.

    parse.py ROUND WORKLOAD TOOL SERVER CPU_TICKS FILE CLK_TCK SECONDS

FILE is heimdall-loadtest's --json report or dnsperf's output. The server's
CPU time per query is CPU_TICKS / CLK_TCK divided by the answered queries.
heimdall-loadtest gives latency percentiles; dnsperf gives only the mean
and standard deviation, so its p50/p99 are empty.
"""
import json
import re
import sys


def main():
    rnd, workload, tool, server, ticks, path, hz, secs = sys.argv[1:9]
    ticks, hz, secs = int(ticks), int(hz), float(secs)
    qps = answered = p50 = p99 = mean = sd = loss = None
    notes = []
    try:
        if tool == "loadtest":
            rep = json.load(open(path))
            c = rep["counts"]
            answered = c["answered"]
            qps = rep["qps"]["answered"]
            lat = rep["latency_us"]
            p50, p99, mean = lat["p50"], lat["p99"], lat["mean"]
            loss = 100.0 * rep["loss"]
            bad = sum(c.get(k, 0) for k in ("wrong_id", "wrong_question", "malformed"))
            if bad:
                notes.append(f"{bad} bad answers")
            rc = rep.get("rcodes", {})
            other = {k: v for k, v in rc.items() if v and k not in ("NOERROR", "NXDOMAIN")}
            if other:
                notes.append("rcodes " + ", ".join(f"{k} {v}" for k, v in other.items()))
        else:
            text = open(path).read()

            def num(pattern):
                m = re.search(pattern, text)
                return float(m.group(1)) if m else None

            sent = num(r"Queries sent:\s+(\d+)")
            answered = num(r"Queries completed:\s+(\d+)")
            lost = num(r"Queries lost:\s+(\d+)")
            qps = num(r"Queries per second:\s+([\d.]+)")
            avg = num(r"Average Latency \(s\):\s+([\d.]+)")
            sdv = num(r"Latency StdDev \(s\):\s+([\d.]+)")
            runtime = num(r"Run time \(s\):\s+([\d.]+)")
            mean = avg * 1e6 if avg is not None else None
            sd = sdv * 1e6 if sdv is not None else None
            if sent:
                loss = 100.0 * (lost or 0) / sent
            if runtime is not None and runtime < 0.9 * secs:
                notes.append(f"ran {runtime:.1f}s (query file exhausted)")
            m = re.search(r"Response codes:\s+(.*)", text)
            if m and "SERVFAIL" in m.group(1):
                notes.append("SERVFAIL answers: " + m.group(1).strip())
            answered = int(answered) if answered is not None else None
    except (OSError, ValueError, KeyError, TypeError) as err:
        notes.append(f"no result: {err}")
    cpu_us = (ticks / hz) * 1e6 / answered if answered else None

    def f(v, digits=1):
        return "" if v is None else f"{v:.{digits}f}"

    row = [rnd, workload, tool, server, f(qps, 0), "" if answered is None else str(int(answered)),
           f(cpu_us, 3), f(p50), f(p99), f(mean), f(sd), f(loss, 4), "; ".join(notes)]
    print("\t".join(row))


if __name__ == "__main__":
    main()
