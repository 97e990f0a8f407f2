#!/usr/bin/env python3
"""Plot `hearth bench` CSV output as an SVG (standard library only).

Usage: python3 bench/plot_bench.py OUT.svg LABEL=bench.csv [LABEL=bench.csv ...]

Each input is the stdout of `hearth bench`; its frontier table gives prefill and decode
tokens/s against the context frontier. Two panels: prefill (left) and decode (right),
one line per input, log2 x axis.
"""
import math
import sys


def read_frontiers(path):
    rows = []
    header = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                if header and rows:
                    break
                continue
            cells = line.split(",")
            if cells[0] == "frontier":
                header = cells
                continue
            if header and cells[0].isdigit():
                rows.append(dict(zip(header, cells)))
            elif header and rows:
                break
    return rows


COLORS = ["#d1495b", "#00798c", "#edae49", "#30638e", "#6a4c93", "#2a9d8f"]


def panel(series, key, title, x0, y0, w, h):
    out = []
    xs = [int(r["frontier"]) for _, rows in series for r in rows]
    ys = [float(r[key]) for _, rows in series for r in rows]
    if not xs:
        return out
    lx0, lx1 = math.log2(min(xs)), math.log2(max(xs))
    if lx1 == lx0:
        lx1 = lx0 + 1
    ymax = max(ys) * 1.1 or 1.0

    def px(x):
        return x0 + 50 + (math.log2(x) - lx0) / (lx1 - lx0) * (w - 70)

    def py(y):
        return y0 + h - 40 - y / ymax * (h - 70)

    out.append(f'<text x="{x0 + w / 2}" y="{y0 + 18}" text-anchor="middle" '
               f'font-size="14" font-weight="bold">{title}</text>')
    out.append(f'<line x1="{x0 + 50}" y1="{py(0)}" x2="{x0 + w - 20}" y2="{py(0)}" stroke="#333"/>')
    out.append(f'<line x1="{x0 + 50}" y1="{py(0)}" x2="{x0 + 50}" y2="{py(ymax)}" stroke="#333"/>')
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<text x="{x0 + 45}" y="{py(v) + 4}" text-anchor="end" font-size="10">'
                   f'{v:,.0f}</text>')
        out.append(f'<line x1="{x0 + 50}" y1="{py(v)}" x2="{x0 + w - 20}" y2="{py(v)}" '
                   f'stroke="#ddd"/>')
    for x in sorted(set(xs)):
        label = f"{x // 1024}k" if x >= 1024 else str(x)
        out.append(f'<text x="{px(x)}" y="{py(0) + 15}" text-anchor="middle" font-size="10">'
                   f'{label}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h - 8}" text-anchor="middle" font-size="11">'
               f'context (tokens)</text>')
    for i, (label, rows) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        pts = " ".join(f"{px(int(r['frontier'])):.1f},{py(float(r[key])):.1f}" for r in rows)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for r in rows:
            out.append(f'<circle cx="{px(int(r["frontier"])):.1f}" '
                       f'cy="{py(float(r[key])):.1f}" r="3" fill="{c}"/>')
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    series = []
    for arg in sys.argv[2:]:
        label, _, path = arg.partition("=")
        series.append((label, read_frontiers(path)))
    w, h = 900, 380
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 30 * len(series)}" '
           f'font-family="sans-serif">', '<rect width="100%" height="100%" fill="white"/>']
    svg += panel(series, "prefill_tps", "prefill tokens/s (new interval)", 0, 0, w / 2, h)
    svg += panel(series, "decode_tps", "decode tokens/s (greedy)", w / 2, 0, w / 2, h)
    for i, (label, _) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        svg.append(f'<rect x="60" y="{h + 8 + 22 * i}" width="14" height="14" fill="{c}"/>')
        svg.append(f'<text x="80" y="{h + 20 + 22 * i}" font-size="12">{label}</text>')
    svg.append("</svg>")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(svg) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
