#!/usr/bin/env python3
"""Medians, a Markdown section and an SVG chart from benches/peers/compare.sh.

    report.py --results results.tsv --meta meta.txt --markdown out.md --svg out.svg
              [--docs docs/BENCHMARKS.md --docs-svg docs/peers.svg]

With --docs, the text between `<!-- peers:begin -->` and `<!-- peers:end -->`
in that file is replaced (the markers are appended at its end when absent);
nothing else in the file changes. Standard library only.
"""
import argparse
import csv
import html
import re
import shutil
import statistics

BEGIN = "<!-- peers:begin -->"
END = "<!-- peers:end -->"
NAMES = {
    "heimdall": "heimdall",
    "unbound": "Unbound",
    "dnsdist": "dnsdist",
    "pdns-recursor": "PowerDNS Recursor",
    "knot-resolver": "Knot Resolver",
}
TOOL_NAMES = {"loadtest": "heimdall-loadtest", "dnsperf": "dnsperf"}
COLORS = {
    "heimdall": "#d35400",
    "unbound": "#2e86c1",
    "dnsdist": "#27ae60",
    "pdns-recursor": "#8e44ad",
    "knot-resolver": "#7f8c8d",
}


def read_meta(path):
    meta, multi = {}, {}
    for line in open(path):
        key, _, value = line.rstrip("\n").partition("=")
        if key in ("skipped",):
            multi.setdefault(key, []).append(value)
        else:
            meta[key] = value
    return meta, multi


def num(v):
    return float(v) if v not in ("", None) else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(rows, servers, tools, workloads):
    """(workload, tool, server) -> dict of medians over rounds, plus ranges."""
    out = {}
    for w in workloads:
        for t in tools:
            for s in servers:
                rs = [r for r in rows if (r["workload"], r["tool"], r["server"]) == (w, t, s)]
                if not rs:
                    continue
                qps = [num(r["qps"]) for r in rs]
                cpu = [num(r["cpu_us"]) for r in rs]
                out[(w, t, s)] = {
                    "n": len(rs),
                    "qps": median(qps),
                    "qps_min": min([q for q in qps if q is not None], default=None),
                    "qps_max": max([q for q in qps if q is not None], default=None),
                    "cpu": median(cpu),
                    "p50": median([num(r["p50_us"]) for r in rs]),
                    "p99": median([num(r["p99_us"]) for r in rs]),
                    "mean": median([num(r["mean_us"]) for r in rs]),
                    "sd": median([num(r["sd_us"]) for r in rs]),
                    "loss": median([num(r["loss_pct"]) for r in rs]),
                    "notes": sorted({r["note"] for r in rs if r.get("note")}),
                }
    return out


def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_us(v):
    if v is None:
        return "–"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def fmt_loss(v):
    if v is None:
        return "–"
    return "0" if v == 0 else f"{v:.3f}%"


def markdown(meta, multi, agg, servers, tools, workloads, svg_name):
    L = []
    L.append("## heimdall against Unbound, dnsdist, PowerDNS Recursor and Knot Resolver (one core)")
    L.append("")
    L.append("This section is written by `benches/peers/compare.sh`; edit that script,")
    L.append("not this text. To repeat it (Debian 12, root for the package installs):")
    L.append("")
    L.append("```sh")
    L.append(meta.get("command", "just compare-peers"))
    L.append("```")
    L.append("")
    L.append(
        "Setup (all in the script, described in `benches/peers/README.md`): every server is "
        "started with `taskset -c 0` and one thread or worker (heimdall `cores: [0]`, Unbound "
        "`num-threads: 1`, dnsdist one listener with its packet cache, PowerDNS Recursor "
        "`threads=1` with `pdns-distributes-queries=no`, one kresd process) and forwards "
        "everything to the synthetic upstream (`heimdall-loadtest upstream`, 127.0.0.1, "
        "CPU 1). The load generator runs on CPU 1 too, in max mode: heimdall-loadtest "
        f"`{meta.get('lt_args', '')}` and dnsperf `{meta.get('dnsperf_args', '')}`, both "
        "without EDNS. Workloads: **hot**: 1,000 names (`host-0..999` A), every server "
        "warmed first, so every counted query is a cache hit; **mixed**: "
        f"`{meta.get('mix', '')}`: 80% those hot names, 10% a `host-i` A never asked "
        "before (a cache miss, forwarded; a new range of names per round and tool), 10% "
        "one of 1,000 `nx-i` names (NXDOMAIN, negative-cache hits after the warm-up). "
        "Both tools ask the same stream for a given round (dnsperf reads the file "
        "`heimdall-loadtest queries` writes with the same seed). "
        f"{meta.get('rounds')} rounds of {meta.get('secs')} s per server, tool and workload; "
        "each round runs every server once per tool and workload, the server order rotated "
        "by one each round. The figures are medians over the rounds. Server CPU is "
        "utime+stime from `/proc/PID/stat` (all threads and child processes) before and "
        "after each run, divided by the answered queries."
    )
    L.append("")
    L.append(f"Run of {meta.get('date')}: {meta.get('nproc')} CPUs ({meta.get('cpu')}), "
             f"Linux {meta.get('kernel')}, load average {meta.get('load_start')} at the start "
             f"and {meta.get('load_end')} at the end, {int(meta.get('wall_s', 0)) // 60} min "
             f"{int(meta.get('wall_s', 0)) % 60} s in all. Versions: "
             + ", ".join(meta[k] for k in sorted(meta) if k.startswith("version.")) + ".")
    if multi.get("skipped"):
        L.append("")
        L.append("Skipped in this run: " + "; ".join(multi["skipped"]) + ".")
    for w in workloads:
        for t in tools:
            if not any((w, t, s) in agg for s in servers):
                continue
            L.append("")
            L.append(f"**{w}**, {TOOL_NAMES.get(t, t)}:")
            L.append("")
            if t == "dnsperf":
                L.append("| server | answered q/s (median; range) | CPU µs/query | vs heimdall CPU | latency mean | latency sd | loss |")
                L.append("| --- | --- | --- | --- | --- | --- | --- |")
            else:
                L.append("| server | answered q/s (median; range) | CPU µs/query | vs heimdall CPU | p50 | p99 | loss |")
                L.append("| --- | --- | --- | --- | --- | --- | --- |")
            h = agg.get((w, t, "heimdall"))
            for s in servers:
                a = agg.get((w, t, s))
                if a is None:
                    continue
                ratio = "–"
                if h and h["cpu"] and a["cpu"]:
                    ratio = "1.00x" if s == "heimdall" else f"{a['cpu'] / h['cpu']:.2f}x"
                name = NAMES.get(s, s)
                if s == "heimdall":
                    name = f"**{name}**"
                qps = f"{fmt_int(a['qps'])} ({fmt_int(a['qps_min'])}-{fmt_int(a['qps_max'])})"
                cpu = "–" if a["cpu"] is None else f"{a['cpu']:.2f}"
                if t == "dnsperf":
                    lat = (fmt_us(a["mean"]), fmt_us(a["sd"]))
                else:
                    lat = (fmt_us(a["p50"]), fmt_us(a["p99"]))
                L.append(f"| {name} | {qps} | {cpu} | {ratio} | {lat[0]} | {lat[1]} | {fmt_loss(a['loss'])} |")
            notes = [(s, n) for s in servers for n in agg.get((w, t, s), {}).get("notes", [])]
            if notes:
                L.append("")
                for s, n in notes:
                    L.append(f"- {NAMES.get(s, s)}: {n}")
    L.append("")
    L.append(summary(agg, servers, tools, workloads))
    L.append("")
    L.append(
        "\"vs heimdall CPU\" is the server's CPU time per query over heimdall's (above 1: "
        "heimdall uses less). dnsperf reports only the mean latency and its standard "
        "deviation, no percentiles. In max mode the latency is mostly the time a query "
        "waits behind the others outstanding, so it follows the answered rate; the loss "
        "is queries not answered within 1 s (both tools' timeout here). A lost query "
        "holds one of dnsperf's outstanding slots for that second, so a server that drops "
        "queries shows a lower mean latency for the ones it answers. The machine is shared: "
        "the load average above says how busy it was, and the q/s ranges say how much the "
        "rounds moved."
    )
    L.append("")
    L.append(f"![CPU time per query and answered queries per second, medians]({svg_name})")
    L.append("")
    L.append("Per-round rows: `target/compare-peers/results.tsv` after a run (not kept in git).")
    return "\n".join(L) + "\n"


def summary(agg, servers, tools, workloads):
    """Where heimdall is ahead and where it is not, from the medians."""
    behind, cases = [], 0
    for w in workloads:
        for t in tools:
            h = agg.get((w, t, "heimdall"))
            if not h:
                continue
            for s in servers:
                a = agg.get((w, t, s))
                if s == "heimdall" or not a:
                    continue
                cases += 1
                where = f"{w}/{TOOL_NAMES.get(t, t)}"
                if a["qps"] and h["qps"] and a["qps"] > h["qps"]:
                    behind.append(f"{NAMES.get(s, s)} answered more q/s on {where} "
                                  f"({fmt_int(a['qps'])} against {fmt_int(h['qps'])})")
                if a["cpu"] and h["cpu"] and a["cpu"] < h["cpu"]:
                    behind.append(f"{NAMES.get(s, s)} used less CPU per query on {where} "
                                  f"({a['cpu']:.2f} against {h['cpu']:.2f} µs)")
                for key, label in (("p50", "p50"), ("p99", "p99"), ("mean", "mean latency")):
                    if t == "loadtest" and key == "mean":
                        continue
                    if t == "dnsperf" and key != "mean":
                        continue
                    if a[key] is not None and h[key] is not None and a[key] < h[key]:
                        behind.append(f"{NAMES.get(s, s)} had a lower {label} on {where} "
                                      f"({fmt_us(a[key])} against {fmt_us(h[key])})")
                if a["loss"] is not None and h["loss"] is not None and a["loss"] < h["loss"]:
                    behind.append(f"{NAMES.get(s, s)} lost less on {where} "
                                  f"({fmt_loss(a['loss'])} against {fmt_loss(h['loss'])})")
    if not cases:
        return "(No peer ran, so there is nothing to compare.)"
    if not behind:
        return (f"In all {cases} peer comparisons (workload x tool x peer), heimdall was "
                "ahead of the peer on every column: more q/s, less CPU per query, lower "
                "latency, no more loss (medians).")
    return (f"Where heimdall was behind a peer, of {cases} comparisons (workload x tool x peer; "
            "medians; q/s, CPU per query, p50/p99 or dnsperf's mean latency, loss): "
            + "; ".join(behind) + ". Everywhere else heimdall was ahead or equal.")


def svg(agg, servers, tools, workloads, meta):
    groups = [(w, t) for w in workloads for t in tools if any((w, t, s) in agg for s in servers)]
    panels = [("cpu", "server CPU time per query (µs), lower is better"),
              ("qps", "answered queries per second (thousands), higher is better")]
    width, panel_h, top, left, right = 900, 260, 50, 60, 20
    height = top + len(panels) * (panel_h + 60) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">heimdall and peers on one core '
           f'({html.escape(meta.get("date", ""))}, medians of {html.escape(meta.get("rounds", ""))} rounds)</text>']
    # legend
    x = left
    for s in servers:
        out.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{COLORS.get(s, "#999")}"/>')
        out.append(f'<text x="{x + 16}" y="40">{html.escape(NAMES.get(s, s))}</text>')
        x += 30 + 7.5 * len(NAMES.get(s, s))
    plot_w = width - left - right
    for pi, (key, title) in enumerate(panels):
        y0 = top + 20 + pi * (panel_h + 60)
        vals = [agg[(w, t, s)][key] for (w, t) in groups for s in servers
                if (w, t, s) in agg and agg[(w, t, s)][key] is not None]
        scale = 1000.0 if key == "qps" else 1.0
        vmax = max(vals) / scale if vals else 1.0
        step = nice_step(vmax)
        top_v = step * (int(vmax / step) + 1)
        out.append(f'<text x="{left}" y="{y0 - 6}" font-size="13">{html.escape(title)}</text>')
        for i in range(int(round(top_v / step)) + 1):
            v = i * step
            yy = y0 + panel_h - panel_h * v / top_v
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
            label = f"{v:g}"
            out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
        gw = plot_w / max(1, len(groups))
        bw = gw * 0.8 / max(1, len(servers))
        for gi, (w, t) in enumerate(groups):
            gx = left + gi * gw + gw * 0.1
            for si, s in enumerate(servers):
                a = agg.get((w, t, s))
                if not a or a[key] is None:
                    continue
                v = a[key] / scale
                h = panel_h * v / top_v
                bx = gx + si * bw
                out.append(f'<rect x="{bx:.1f}" y="{y0 + panel_h - h:.1f}" width="{bw * 0.9:.1f}" '
                           f'height="{h:.1f}" fill="{COLORS.get(s, "#999")}"><title>{html.escape(NAMES.get(s, s))}: '
                           f'{v:.2f}</title></rect>')
                lbl = f"{v:.2f}" if key == "cpu" else f"{v:.0f}"
                out.append(f'<text x="{bx + bw * 0.45:.1f}" y="{y0 + panel_h - h - 3:.1f}" '
                           f'text-anchor="middle" font-size="9">{lbl}</text>')
            out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{y0 + panel_h + 16}" text-anchor="middle">'
                       f'{html.escape(w)}, {html.escape(TOOL_NAMES.get(t, t))}</text>')
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y0 + panel_h}" y2="{y0 + panel_h}" stroke="#333"/>')
    out.append(f'<text x="{left}" y="{height - 10}" fill="#555">Repeat with: {html.escape(meta.get("command", ""))} '
               f'(benches/peers/compare.sh)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def nice_step(vmax):
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if vmax / step <= 6:
            return step
    return 2000


# Shared with load_curve.py (which imports them).
def report_parser(prog=None):
    """The options of a report: --results --meta --markdown --svg [--docs --docs-svg]."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--docs-svg")
    return ap


def write_docs(args, begin, end, md):
    """With --docs, replace the text between BEGIN and END in that file with MD
    (the markers are appended at its end when absent; nothing else changes);
    with --docs-svg, copy the chart (--svg) there."""
    if args.docs:
        text = open(args.docs).read()
        section = f"{begin}\n{md}{end}"
        if begin in text and end in text:
            text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        open(args.docs, "w").write(text)
    if args.docs_svg:
        shutil.copyfile(args.svg, args.docs_svg)


def main():
    args = report_parser().parse_args()

    meta, multi = read_meta(args.meta)
    rows = list(csv.DictReader(open(args.results), delimiter="\t"))
    servers = meta.get("servers", "").split()
    tools = meta.get("tools", "").split()
    workloads = meta.get("workloads", "").split()
    agg = aggregate(rows, servers, tools, workloads)

    md = markdown(meta, multi, agg, servers, tools, workloads, "peers.svg")
    open(args.markdown, "w").write(md)
    open(args.svg, "w").write(svg(agg, servers, tools, workloads, meta))
    write_docs(args, BEGIN, END, md)


if __name__ == "__main__":
    main()
