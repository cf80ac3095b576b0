"""PNG charts of the bench's JSON results (matplotlib, Agg backend).

    python3 bench/charts.py bench/results/run-<time>.json ...   charts beside each JSON (or in --out DIR)
    python3 bench/charts.py --docs                              the README's figures, docs/images/bench-*.png,
                                                                from bench/results/example-*.json

Per kind of JSON:
- run.py (throughput): `<stem>-rps.png` and `<stem>-p99.png`, req/s and p99 per operation (each read
  without and with Origin, and the view POST) for mock, mock-postgres, flask-floor and prism-static, grouped
  bars; the view POST in a panel of its own (its scale is not the reads').
- fixed_rate.py: `<stem>-latency.png`, p50 and p99 per server at the fixed offered rate.
- scaling.py: `<stem>-curves.png`, p50 and p99 per read and peak RSS against the dataset size (log x).

run.py and fixed_rate.py call `after_run` at the end of a run (`--no-charts` turns it off). matplotlib is
imported only when drawing: the bench scripts run without it (`pip install -e '.[bench]'` brings it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOCS_IMAGES = ROOT / "docs" / "images"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

SERVERS = ["mock", "mock-postgres", "flask-floor", "prism-static"]
COLORS = {"mock": "#1f77b4", "mock-postgres": "#6baed6", "flask-floor": "#7f7f7f", "prism-static": "#ff7f0e"}
READS = ["recently_viewed", "most_viewed", "stats", "dashboard_logs", "mapping_logs", "audit_entry"]
ORIGIN = "+origin"
KIND_RUN = "insights-mock throughput bench"
KIND_FIXED = "insights-mock fixed-rate bench"
KIND_SCALING = "insights-mock scaling bench"
# --docs: example JSON -> the stem of its charts in docs/images
DOCS = {"example-run.json": "bench-run", "example-fixed-rate.json": "bench-fixed-rate",
        "example-scaling.json": "bench-scaling"}


def _pyplot():
    import matplotlib  # noqa: PLC0415 - only when drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 10, "axes.titlesize": 11,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _label(op: str) -> str:
    """Two short lines: a read's name, then beside it "+ Origin" for the same read with the header."""
    if op.endswith(ORIGIN):
        return "+ Origin"
    return op.replace("_", "\n", 1) if "_" in op else op


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _machine(report: dict) -> str:
    machine = report.get("machine", {})
    when = report.get("started_at", "")[:16].replace("T", " ")
    parts = [f"{machine['cores']} cores" if machine.get("cores") else "", f"{when} UTC" if when else ""]
    return ", ".join(p for p in parts if p)


def _servers(report: dict) -> list[str]:
    results = report.get("results", {})
    return [s for s in SERVERS if isinstance(results.get(s), dict) and results[s] and "error" not in results[s]]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def run_chart(report: dict, metric: str, path: Path) -> Path | None:
    """Grouped bars of `metric` ("rps" or "p99_ms") per operation and server; the view POST on its own."""
    plt = _pyplot()
    servers = _servers(report)
    results = report["results"]
    present = {op for s in servers for op in results[s]}
    reads = [op for read in READS for op in (read, read + ORIGIN) if op in present]
    writes = ["view"] if "view" in present else []
    if not servers or not (reads or writes):
        return None
    panels = [(ops, title) for ops, title in ((reads, "reads"), (writes, "view POST")) if ops]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4.8), squeeze=False, sharey=False,
                             gridspec_kw={"width_ratios": [max(len(ops), 2.2) for ops, _ in panels]})
    width = 0.8 / len(servers)
    for ax, (ops, title) in zip(axes[0], panels):
        for i, server in enumerate(servers):
            values = [_number(results[server].get(op, {}).get(metric)) for op in ops]
            xs = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(ops))]
            bars = ax.bar(xs, values, width, label=server, color=COLORS[server])
            if title == "view POST":
                fmt = "{:,.0f}" if metric == "rps" else "{:.0f}"
                ax.bar_label(bars, labels=["" if math.isnan(v) else fmt.format(v) for v in values],
                             fontsize=8, padding=2)
        ax.set_xticks(range(len(ops)), [_label(op) for op in ops], fontsize=8.5)
        ax.set_title(title)
        ax.yaxis.grid(True, color="#dddddd")
        ax.set_axisbelow(True)
        ax.margins(y=0.12)
    axes[0][0].set_ylabel("requests/s" if metric == "rps" else "p99 latency (ms)")
    axes[0][0].legend(loc="upper left", ncols=len(servers), fontsize=9, frameon=False,
                      bbox_to_anchor=(0, -0.16))
    s = report.get("settings", {})
    what = "Throughput (req/s)" if metric == "rps" else "p99 latency (ms, lower is better)"
    fig.suptitle(f"{what} per operation: wrk, {s.get('connections', '?')} connections, "
                 f"{s.get('duration', '?')} s each, {s.get('workers', '?')} workers; {_machine(report)}",
                 fontsize=11)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def fixed_rate_chart(report: dict, path: Path) -> Path | None:
    """p50 and p99 per server at the fixed offered rate."""
    plt = _pyplot()
    servers = _servers(report)
    if not servers:
        return None
    results = report["results"]
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.38
    for j, (key, shade) in enumerate((("p50_ms", 0.55), ("p99_ms", 1.0))):
        values = [_number(results[s].get(key)) for s in servers]
        xs = [x + (j - 0.5) * width for x in range(len(servers))]
        bars = ax.bar(xs, values, width, label=key.removesuffix("_ms"),
                      color=[COLORS[s] for s in servers], alpha=shade,
                      hatch="" if j else "//", edgecolor="white")
        ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.1f}" for v in values], fontsize=9, padding=2)
    ax.set_xticks(range(len(servers)),
                  [f"{s}\n{_number(results[s].get('achieved_rps')):,.0f} req/s held" for s in servers])
    ax.set_ylabel("latency (ms)")
    ax.yaxis.grid(True, color="#dddddd")
    ax.set_axisbelow(True)
    ax.margins(y=0.15)
    from matplotlib.patches import Patch  # noqa: PLC0415

    ax.legend(handles=[Patch(facecolor="#999999", alpha=0.55, hatch="//", edgecolor="white", label="p50"),
                       Patch(facecolor="#999999", label="p99")], frameon=False, loc="upper left")
    s = report.get("settings", {})
    rate, share = _number(s.get("rate")), _number(s.get("post_share"))
    mix = f", {100 - share * 100:.0f}% reads / {share * 100:.0f}% view POSTs" if not math.isnan(share) else ""
    ax.set_title(f"Latency at a fixed rate: {rate:,.0f} req/s offered{mix}, {_number(s.get('duration')):g} s "
                 f"(hey)\n{_machine(report)}", fontsize=11)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _size_label(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def scaling_chart(report: dict, path: Path) -> Path | None:
    """p50 and p99 per read, and peak RSS, against the dataset size (log x). Tolerates older JSONs: a read
    or the memory missing at some size is left out."""
    plt = _pyplot()
    sizes = [e for e in report.get("sizes", []) if isinstance(e, dict) and isinstance(e.get("size"), int)]
    if len(sizes) < 2:
        return None
    xs = [e["size"] for e in sizes]
    ops = [op for op in READS if any(op in e.get("results", {}) for e in sizes)]
    ops += sorted({op for e in sizes for op in e.get("results", {})} - set(ops))
    rss = [_number(e.get("memory", {}).get("peak_tree_rss_mb")) for e in sizes]
    has_memory = not all(math.isnan(v) for v in rss)
    panels = [("p50_ms", "p50 latency (ms)"), ("p99_ms", "p99 latency (ms)")]
    fig, axes = plt.subplots(1, len(panels) + has_memory, figsize=(14, 4.4), squeeze=False)
    axes = axes[0]
    cmap = plt.get_cmap("tab10")
    for ax, (key, ylabel) in zip(axes, panels):
        for i, op in enumerate(ops):
            ys = [_number(e.get("results", {}).get(op, {}).get(key)) for e in sizes]
            ax.plot(xs, ys, marker="o", color=cmap(i), label=op.replace("_", " "))
        ax.set_ylabel(ylabel)
        ax.set_title(f"{key.removesuffix('_ms')} per read")
        ax.set_ylim(bottom=0)
    if has_memory:
        ax = axes[-1]
        ax.plot(xs, rss, marker="o", color="#1f77b4", label="peak RSS (process tree)")
        pss = [_number(e.get("memory", {}).get("peak_tree_pss_mb")) for e in sizes]
        if not all(math.isnan(v) for v in pss):
            ax.plot(xs, pss, marker="o", color="#6baed6", linestyle="--", label="peak PSS (process tree)")
        limit = _number(report.get("targets", {}).get("peak_rss_at_1m_max_mb"))
        if not math.isnan(limit):
            ax.axhline(limit, color="#d62728", linestyle=":", label=f"target at 1M: < {limit:.0f} MB")
        ax.set_ylabel("MB")
        ax.set_title("memory")
        top = max([v for v in rss if not math.isnan(v)] + ([] if math.isnan(limit) else [limit]))
        ax.set_ylim(0, top * 1.25)
        ax.legend(frameon=False, fontsize=8.5, loc="center left")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(xs, [_size_label(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("view events = audit entries")
        ax.grid(True, color="#dddddd")
        ax.set_axisbelow(True)
    axes[0].legend(frameon=False, fontsize=8.5, loc="lower left", ncols=2)
    s = report.get("settings", {})
    fig.suptitle(f"Scaling with the dataset size: the mock, {s.get('workers', '?')} workers, wrk "
                 f"{s.get('connections', '?')} connections, {s.get('duration', '?')} s per read; "
                 f"{_machine(report)}", fontsize=11)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def charts(report: dict, out_dir: Path, stem: str) -> list[Path]:
    """Every chart of one bench JSON, as `<out_dir>/<stem>-<chart>.png`; the paths written."""
    kind = report.get("kind")
    if kind == KIND_RUN:
        made = [run_chart(report, "rps", out_dir / f"{stem}-rps.png"),
                run_chart(report, "p99_ms", out_dir / f"{stem}-p99.png")]
    elif kind == KIND_FIXED:
        made = [fixed_rate_chart(report, out_dir / f"{stem}-latency.png")]
    elif kind == KIND_SCALING:
        made = [scaling_chart(report, out_dir / f"{stem}-curves.png")]
    else:
        raise ValueError(f"not a bench JSON this script knows: kind {kind!r}")
    return [p for p in made if p]


def chart_file(json_path: Path, out_dir: Path | None = None, stem: str | None = None) -> list[Path]:
    return charts(json.loads(Path(json_path).read_text()), out_dir or Path(json_path).parent,
                  stem or Path(json_path).stem)


def _python_with_matplotlib() -> str | None:
    if importlib.util.find_spec("matplotlib") is not None:
        return sys.executable
    if VENV_PYTHON.exists():
        probe = subprocess.run([str(VENV_PYTHON), "-c", "import matplotlib"], capture_output=True)
        if probe.returncode == 0:
            return str(VENV_PYTHON)
    return None


def after_run(json_path: Path) -> list[Path]:
    """run.py and fixed_rate.py: the charts of the JSON just written, beside it; a note (not a failure)
    when matplotlib is missing or drawing fails: the figures are in the JSON whatever happens here."""
    python = _python_with_matplotlib()
    if python is None:
        print("note: no charts: matplotlib is not installed here or in .venv "
              "(.venv/bin/pip install -e '.[bench]'; then `python3 bench/charts.py JSON`)")
        return []
    try:
        if python == sys.executable:
            written = chart_file(json_path)
        else:
            proc = subprocess.run([python, str(Path(__file__).resolve()), str(json_path)],
                                  capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip()[-1000:])
            written = [Path(line.removeprefix("wrote ")) for line in proc.stdout.splitlines()
                       if line.startswith("wrote ")]
    except Exception as exc:  # noqa: BLE001 - a chart is not worth the run
        print(f"note: no charts: {exc!r}")
        return []
    for path in written:
        print(f"chart written to {path}")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", nargs="*", type=Path, help="bench JSON files (run.py, fixed_rate.py, scaling.py)")
    p.add_argument("--out", type=Path, help="where the PNGs go (default: beside each JSON)")
    p.add_argument("--docs", action="store_true",
                   help=f"the README's figures: bench/results/example-*.json -> {DOCS_IMAGES}/bench-*.png")
    args = p.parse_args(argv)
    jobs = [(path, args.out, None) for path in args.json]
    if args.docs:
        jobs += [(RESULTS / name, args.out or DOCS_IMAGES, stem) for name, stem in DOCS.items()]
    if not jobs:
        p.error("name a JSON file or give --docs")
    try:
        _pyplot()
    except ImportError:
        print("matplotlib is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    for path, out, stem in jobs:
        written = chart_file(path, out, stem)
        if not written:
            print(f"{path}: nothing to draw", file=sys.stderr)
        for w in written:
            print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
