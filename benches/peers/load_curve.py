#!/usr/bin/env python3
"""Rows, medians, a Markdown section and an SVG chart for benches/peers/load-curve.sh.

    load_curve.py header
        the TSV header line
    load_curve.py row ROUND RATE SERVER CPU_TICKS CLK_TCK REPORT.json [NOTE]
        one TSV row (stdout) from one run's heimdall-loadtest --json report
        (with NOTE: a row with no figures, for a run that did not happen);
        $SERVER_BUSY_PCT, when set, is the share of the run's wall time the
        server's CPU time filled
    load_curve.py report --results results.tsv --meta meta.txt --markdown out.md --svg out.svg
                         [--docs docs/BENCHMARKS.md --docs-svg docs/load-curve.svg]
        medians over the rounds; prints the table to stdout

With --docs, the text between `<!-- load-curve:begin -->` and
`<!-- load-curve:end -->` in that file is replaced (the markers are appended
at its end when absent); nothing else in the file changes. The chart has two
panels, server CPU time per answered query and median latency, each against
the offered rate on a log axis, one line per server; the saturation runs
(max mode, no offered rate) are drawn apart at the right, at "max".
Standard library only. The colours and names are those of report.py
(docs/peers.svg), and so are the medians, the options of `report` and the
rewriting of the docs.
"""
import csv
import html
import json
import math
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import COLORS as PEER_COLORS  # noqa: E402  (same directory)
from report import NAMES as PEER_NAMES  # noqa: E402
from report import median, num, report_parser, write_docs  # noqa: E402

BEGIN = "<!-- load-curve:begin -->"
END = "<!-- load-curve:end -->"
NAMES = dict(PEER_NAMES, baseline="heimdall (baseline)", reflector="reflector",
             **{"wake-glommio": "reflector waiting as heimdall (glommio)",
                "wake-epoll": "reflector waiting as Unbound (epoll)"})
COLORS = dict(PEER_COLORS, baseline="#d35400", reflector="#34495e",
              **{"wake-glommio": "#8e44ad", "wake-epoll": "#16a085"})
DASHED = {"baseline": "6,4", "reflector": "2,3", "wake-glommio": "2,3", "wake-epoll": "2,3"}
FIELDS = ["round", "rate", "server", "offered_qps", "answered_qps", "answered", "cpu_us",
          "p50_us", "p99_us", "p999_us", "loss_pct", "late", "server_busy_pct", "note"]


# ---------------------------------------------------------------- one row
def row(argv):
    rnd, rate, server, ticks, hz, path = argv[:6]
    ticks, hz = int(ticks), int(hz)
    vals = dict.fromkeys(FIELDS, "")
    vals.update(round=rnd, rate=rate, server=server,
                server_busy_pct=os.environ.get("SERVER_BUSY_PCT", ""))
    notes = argv[6:]
    if notes:  # a run that did not happen: no report to read
        vals["note"] = "; ".join(notes)
        print("\t".join(vals[f] for f in FIELDS))
        return
    try:
        rep = json.load(open(path))
        c = rep["counts"]
        lat = rep["latency_us"]
        answered = c["answered"]
        # The CPU was read around the whole run (warm-up and final drain
        # included), so it is divided by every answer of the run: the sum of
        # the per-second series, which covers all of it.
        answered_all = sum(p.get("answered", 0) for p in rep.get("series", [])) or answered
        vals.update(
            offered_qps=f"{rep['qps']['offered']:.0f}" if rate != "max" else "",
            answered_qps=f"{rep['qps']['answered']:.0f}",
            answered=str(answered),
            cpu_us=f"{ticks / hz * 1e6 / answered_all:.3f}" if answered_all else "",
            p50_us=f"{lat['p50']:.1f}",
            p99_us=f"{lat['p99']:.1f}",
            p999_us=f"{lat['p99_9']:.1f}",
            loss_pct=f"{100.0 * rep['loss']:.4f}",
            late=str(c.get("behind_schedule", 0)),
        )
        bad = sum(c.get(k, 0) for k in ("wrong_id", "wrong_question", "malformed"))
        if bad:
            notes.append(f"{bad} bad answers")
        other = {k: v for k, v in rep.get("rcodes", {}).items() if v and k != "NOERROR"}
        if other:
            notes.append("rcodes " + ", ".join(f"{k} {v}" for k, v in other.items()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        notes.append(f"no result: {err}")
    vals["note"] = "; ".join(notes)
    print("\t".join(vals[f] for f in FIELDS))


# ---------------------------------------------------------------- medians
def rate_key(rate):
    return math.inf if rate == "max" else float(rate)


def aggregate(rows, servers, rates):
    out = {}
    for rate in rates:
        for s in servers:
            rs = [r for r in rows if (r["rate"], r["server"]) == (rate, s)]
            if not rs:
                continue
            qps = [num(r["answered_qps"]) for r in rs]
            out[(rate, s)] = {
                "n": len(rs),
                "qps": median(qps),
                "qps_min": min([q for q in qps if q is not None], default=None),
                "qps_max": max([q for q in qps if q is not None], default=None),
                "cpu": median([num(r["cpu_us"]) for r in rs]),
                "p50": median([num(r["p50_us"]) for r in rs]),
                "p99": median([num(r["p99_us"]) for r in rs]),
                "p999": median([num(r["p999_us"]) for r in rs]),
                "loss": median([num(r["loss_pct"]) for r in rs]),
                # How busy the server kept its CPU (absent in the rows of
                # runs from before it was recorded).
                "busy": median([num(r.get("server_busy_pct")) for r in rs]),
                # Queries the generator sent more than 1 ms late, per round.
                "late": [r.get("late") or "–" for r in sorted(rs, key=lambda r: int(r["round"]))],
                "notes": sorted({r["note"] for r in rs if r.get("note")}),
            }
    return out


def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_us(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_cpu(v):
    return "–" if v is None else f"{v:.2f}"


def fmt_pct(v):
    return "–" if v is None else f"{v:.0f}"


def fmt_loss(v):
    if v is None:
        return "–"
    return "0" if v == 0 else f"{v:.3f}"


def rate_label(rate):
    return "max" if rate == "max" else f"{int(rate):,}"


def read_meta(path):
    meta, skipped = {}, []
    for line in open(path):
        key, _, value = line.rstrip("\n").partition("=")
        if key == "skipped":
            skipped.append(value)
        else:
            meta[key] = value
    return meta, skipped


def late(rate, counts):
    if rate == "max":
        return "–"  # max mode has no schedule
    return ", ".join(f"{int(c):,}" if c.isdigit() else c for c in counts)


def table(agg, servers, rates):
    L = ["| offered q/s | server | answered q/s | CPU µs/query | p50 µs | p99 µs | p99.9 µs | loss % "
         "| sent late, per round | server CPU busy % |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rate in rates:
        for s in servers:
            a = agg.get((rate, s))
            if a is None:
                continue
            name = NAMES.get(s, s)
            if s == "heimdall":
                name = f"**{name}**"
            qps = fmt_int(a["qps"])
            if rate == "max" and a["n"] > 1:
                qps += f" ({fmt_int(a['qps_min'])}-{fmt_int(a['qps_max'])})"
            L.append(f"| {rate_label(rate)} | {name} | {qps} | {fmt_cpu(a['cpu'])} | {fmt_us(a['p50'])} "
                     f"| {fmt_us(a['p99'])} | {fmt_us(a['p999'])} | {fmt_loss(a['loss'])} "
                     f"| {late(rate, a['late'])} | {fmt_pct(a['busy'])} |")
    return "\n".join(L)


def markdown(meta, skipped, agg, servers, rates, svg_name):
    secs = meta.get("secs", "?")
    wall = int(meta.get("wall_s", 0) or 0)
    L = ["## Load curve", ""]
    L.append("This section is written by `benches/peers/load-curve.sh --write`; edit that script "
             "(or `benches/peers/load_curve.py`), not this text. To repeat it (Debian 12, root "
             "for the package installs; see `benches/peers/README.md`):")
    L += ["", "```sh", meta.get("command", "just load-curve --write"), "```", ""]
    L.append(
        "What it measures: the cost and latency of a cache hit as the offered load grows. "
        "Each server runs alone, pinned to CPU 0 with one thread or core (heimdall "
        "`cores: [0]`, Unbound `num-threads: 1`, dnsdist one listener with its packet cache; "
        "the templates in `benches/peers/conf/`), heimdall and Unbound and dnsdist forwarding "
        "to the synthetic upstream (`heimdall-loadtest upstream`, a zone of 1,000 names, TTL "
        "1 day, CPU 1). The **reflector** is `heimdall-loadtest upstream --echo` on CPU 0: "
        "it returns each query with QR set, batched (`recvmmsg`/`sendmmsg`, GSO), with no "
        "DNS work at all, so it is the floor the kernel's loopback UDP path sets. Every "
        "server process is fresh for each run and is first warmed with each of the 1,000 "
        "names twice, so every measured query is a cache hit. The load is "
        f"`heimdall-loadtest run --workload hot --names 1000 --edns off {meta.get('lt_args', '')}` "
        f"on CPU 1 for {secs} s after a {meta.get('warmup_s', '1')} s warm-up of the same load "
        "that the latency and loss leave out: open loop (`--rate R`, latency measured from each query's "
        "scheduled send time, so a stall or a queue shows) at each offered rate, and max "
        f"mode (no `--rate`, {meta.get('lt_window', '64')} outstanding per socket) for "
        "saturation, where the latency is mostly queueing behind the window. "
        f"{meta.get('rounds')} rounds; each round runs every offered rate, and at each rate "
        "every server once, the server order rotated by one each round. Figures are medians "
        "over the rounds. CPU µs/query is the server's CPU time (all threads and child "
        "processes; how it is read is said below the table) before and after the run, divided by every query "
        "answered in that time (warm-up included); on loopback it includes the kernel's delivery of each reply into the "
        "client's socket, which Linux charges to the sender. Loss is (lost + unsent) / "
        "scheduled, an answer later than 1 s counting as lost."
    )
    L.append("")
    L.append(f"Run of {meta.get('date')}: {meta.get('nproc')} CPUs ({meta.get('cpu')}), Linux "
             f"{meta.get('kernel')}, load average {meta.get('load_start')} at the start and "
             f"{meta.get('load_end')} at the end, {wall // 60} min {wall % 60} s in all. Versions: "
             + ", ".join(meta[k] for k in sorted(meta) if k.startswith("version.")) + ".")
    if meta.get("quiet_idle", "0") not in ("", "0"):
        L += ["", f"Before each run the script waited for a second in which every CPU was at least "
                  f"{meta['quiet_idle']}% idle (`QUIET_IDLE`); {meta.get('quiet_missed', '0')} of the "
                  f"runs started without one, after waiting the most it would."]
    if skipped:
        L += ["", "Skipped in this run: " + "; ".join(skipped) + "."]
    L += ["", table(agg, servers, rates), ""]
    L += [summary(agg, servers, rates), ""]
    notes = [(r, s, n) for r in rates for s in servers for n in agg.get((r, s), {}).get("notes", [])]
    if notes:
        L.append("Other notes from the load generator's reports (per run):")
        L.append("")
        for r, s, n in notes:
            L.append(f"- {rate_label(r)}, {NAMES.get(s, s)}: {n}")
        L.append("")
    L.append(
        "\"Server CPU busy\" is the server's CPU time over the run divided by the run's wall "
        "time. At saturation it says whose limit the answered rate is: a server near 100 % "
        "answers as fast as it can; one well under it was waiting for queries, so the load "
        "generator (which in max mode keeps its own CPU busy whatever the server does) could "
        "send no faster, and that rate is a lower bound of the server's."
    )
    L.append("")
    L.append(
        "\"Sent late\" counts the queries the load generator itself sent more than 1 ms after "
        "their scheduled time, in each round (the generator's own `behind_schedule`): their "
        "latency includes that lag, so where the count is high, the p99 and p99.9 of that "
        "round measure the generator's CPU (shared with the upstream and, on this VM, with "
        "whatever else runs) more than the server. The p50 is the steadier latency figure."
    )
    L.append("")
    ticks = meta.get("cpu_unit", meta.get("clk_tck", "100"))
    run_s = float(secs) + float(meta.get("warmup_s", "0"))
    if int(ticks) >= 1_000_000:
        cpu_note = (
            "The CPU figures are the scheduler's runtime of the server's threads "
            "(`/proc/PID/task/*/schedstat`, nanoseconds), read before and after each run "
            f"of {run_s:g} s (warm-up included)."
        )
    else:
        cpu_note = (
            f"The CPU figures come in clock ticks (1/{ticks} s): one tick is "
            + ", ".join(f"{1e6 / int(ticks) / (float(r) * run_s):.2f} µs/query at {rate_label(r)} q/s"
                        for r in rates if r != "max")
            + f" in a {run_s:g} s run (warm-up included), so at the lowest rates the CPU column is "
            "coarse; a longer run (the second argument) makes it finer."
        )
    L.append(
        cpu_note + " At the rates a server cannot keep up "
        "with, open-loop latency grows with the queue (and the generator may fall behind it: "
        "see \"sent late\"). The machine is a shared 2-core VM; the load average says how busy "
        "it was."
    )
    L += ["", f"![CPU time per query and median latency against the offered rate]({svg_name})", ""]
    L.append("Per-round rows: `target/load-curve/results.tsv` after a run (not kept in git).")
    return "\n".join(L) + "\n"


def summary(agg, servers, rates):
    """Where heimdall used more or less CPU per query, and had a higher or lower
    p50, than each other server, rate by rate (medians)."""
    if "heimdall" not in servers:
        return ""
    out = []
    for key, what in (("cpu", "CPU per query"), ("p50", "p50")):
        for s in servers:
            if s == "heimdall":
                continue
            less, more = [], []
            for r in rates:
                h, a = agg.get((r, "heimdall")), agg.get((r, s))
                if not h or not a or h[key] is None or a[key] is None:
                    continue
                (less if h[key] < a[key] else more).append(rate_label(r))
            parts = []
            if less:
                parts.append("lower at " + ", ".join(less))
            if more:
                parts.append("higher (or equal) at " + ", ".join(more))
            if parts:
                out.append(f"- {what}, against {NAMES.get(s, s)}: " + "; ".join(parts) + ".")
    return ("heimdall's medians against each other server's, by offered rate (from the table):\n\n"
            + "\n".join(out)) if out else ""


# ---------------------------------------------------------------- chart
def nice_linear(vmax):
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if vmax / step <= 6:
            return step, step * (int(vmax / step) + 1)
    return 20000, 20000 * (int(vmax / 20000) + 1)


def log_ticks(lo, hi):
    """1-2-5 ticks covering [lo, hi]; returns (ticks, axis_lo, axis_hi)."""
    k = math.floor(math.log10(lo))
    ticks = []
    while True:
        for m in (1, 2, 5):
            t = m * 10 ** k
            ticks.append(t)
        if ticks[-1] >= hi:
            break
        k += 1
    ticks = [t for t in ticks if t >= lo / 5]
    axis_lo = max([t for t in ticks if t <= lo], default=ticks[0])
    axis_hi = min([t for t in ticks if t >= hi], default=ticks[-1])
    return [t for t in ticks if axis_lo <= t <= axis_hi], axis_lo, axis_hi


def short(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def panel(out, x0, y0, w, h, title, key, ylabel, agg, servers, rates, log_y):
    numeric = [r for r in rates if r != "max"]
    has_max = "max" in rates
    # x: log of the offered rate; "max" one slot to the right of the last rate.
    lx = [math.log10(float(r)) for r in numeric]
    lo, hi = (min(lx), max(lx)) if lx else (0.0, 1.0)
    span = max(hi - lo, 1.0)
    slots = span + (span * 0.22 if has_max else 0)
    pad = 0.09 * slots

    def xpos(rate):
        v = hi + span * 0.22 if rate == "max" else math.log10(float(rate))
        return x0 + w * (v - lo + pad) / (slots + 2 * pad)

    vals = [agg[(r, s)][key] for r in rates for s in servers
            if (r, s) in agg and agg[(r, s)][key] is not None and agg[(r, s)][key] > 0]
    if not vals:
        vals = [1.0]
    if log_y:
        ticks, ymin, ymax = log_ticks(min(vals), max(vals))

        def ypos(v):
            return y0 + h - h * (math.log10(v) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin))
    else:
        step, ymax = nice_linear(max(vals))
        ymin = 0.0
        ticks = [i * step for i in range(int(round(ymax / step)) + 1)]

        def ypos(v):
            return y0 + h - h * v / ymax
    out.append(f'<text x="{x0}" y="{y0 - 10}" font-size="13">{html.escape(title)}</text>')
    for t in ticks:
        yy = ypos(t)
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end">{short(t)}</text>')
    out.append(f'<text x="{x0 - 44}" y="{y0 + h / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 44} {y0 + h / 2:.1f})">{html.escape(ylabel)}</text>')
    out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y0 + h}" stroke="#333"/>')
    for r in rates:
        xx = xpos(r)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0 + h}" y2="{y0 + h + 4}" stroke="#333"/>')
        label = "max" if r == "max" else short(float(r))
        out.append(f'<text x="{xx:.1f}" y="{y0 + h + 17}" text-anchor="middle">{label}</text>')
    if has_max and numeric:
        sep = (xpos(numeric[-1]) + xpos("max")) / 2
        out.append(f'<line x1="{sep:.1f}" x2="{sep:.1f}" y1="{y0}" y2="{y0 + h}" stroke="#bbb" '
                   f'stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h + 34}" text-anchor="middle">offered queries/s '
               f'(log scale; max: saturation, no offered rate)</text>')
    for s in servers:
        pts = [(r, agg[(r, s)][key], agg[(r, s)]["loss"] or 0) for r in rates
               if (r, s) in agg and agg[(r, s)][key] is not None and (agg[(r, s)][key] > 0 or not log_y)]
        if not pts:
            continue
        color = COLORS.get(s, "#999")
        dash = DASHED.get(s)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        line = [(xpos(r), ypos(v)) for r, v, _ in pts if r != "max"]
        if len(line) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
            out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
        for r, v, loss in pts:
            x, y = xpos(r), ypos(v)
            tip = f"{NAMES.get(s, s)}, {rate_label(r)}: {v:.2f} (loss {loss:.3f}%)"
            # Hollow: more than 1% of the offered queries were lost.
            fill = f'fill="white" stroke="{color}" stroke-width="2"' if loss > 1 else f'fill="{color}"'
            if r == "max":
                # The saturation points side by side, so equal values do not hide each other.
                x += (servers.index(s) - (len(servers) - 1) / 2) * 8
                out.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" {fill}>'
                           f'<title>{html.escape(tip)}</title></rect>')
            else:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" {fill}>'
                           f'<title>{html.escape(tip)}</title></circle>')


def svg(agg, servers, rates, meta):
    width, height = 960, 430
    pw, ph, top = 370, 270, 80
    lefts = (80, 80 + pw + 110)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">Cache hits on one core '
           f'against the offered load ({html.escape(meta.get("date", ""))}, medians of '
           f'{html.escape(meta.get("rounds", ""))} round{"" if meta.get("rounds") == "1" else "s"} of '
           f'{html.escape(meta.get("secs", ""))} s)</text>']
    x = lefts[0]
    for s in servers:
        color = COLORS.get(s, "#999")
        dash = DASHED.get(s)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" x2="{x + 22}" y1="38" y2="38" stroke="{color}" stroke-width="2"{dash_attr}/>')
        out.append(f'<circle cx="{x + 11}" cy="38" r="3.5" fill="{color}"/>')
        out.append(f'<text x="{x + 28}" y="42">{html.escape(NAMES.get(s, s))}</text>')
        x += 50 + 7 * len(NAMES.get(s, s))
    out.append(f'<circle cx="{x + 11}" cy="38" r="3.5" fill="white" stroke="#555" stroke-width="2"/>')
    out.append(f'<text x="{x + 20}" y="42" fill="#555">more than 1% lost</text>')
    cpu_vals = [a["cpu"] for a in agg.values() if a["cpu"]]
    cpu_log = bool(cpu_vals) and max(cpu_vals) / min(cpu_vals) > 8
    panel(out, lefts[0], top, pw, ph, "server CPU per answered query (µs), lower is better", "cpu",
          "CPU µs per query" + (" (log)" if cpu_log else ""), agg, servers, rates, cpu_log)
    panel(out, lefts[1], top, pw, ph, "median latency, p50 (µs, log scale), lower is better", "p50",
          "p50 µs (log)", agg, servers, rates, True)
    out.append(f'<text x="10" y="{height - 10}" fill="#555" font-size="11">Repeat with: '
               f'{html.escape(meta.get("command", ""))} (benches/peers/load-curve.sh)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main
def report(argv):
    args = report_parser("load_curve.py report").parse_args(argv)

    meta, skipped = read_meta(args.meta)
    rows = list(csv.DictReader(open(args.results), delimiter="\t"))
    servers = meta.get("servers", "").split()
    rates = sorted(meta.get("rates", "").split(), key=rate_key)
    agg = aggregate(rows, servers, rates)

    md = markdown(meta, skipped, agg, servers, rates, "load-curve.svg")
    open(args.markdown, "w").write(md)
    open(args.svg, "w").write(svg(agg, servers, rates, meta))
    print(table(agg, servers, rates))
    write_docs(args, BEGIN, END, md)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "header":
        print("\t".join(FIELDS))
    elif len(sys.argv) >= 2 and sys.argv[1] == "row" and len(sys.argv) in (8, 9):
        row(sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
