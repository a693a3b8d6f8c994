"""The benchmark chart: download throughput vs streams and vs sessions (PNG, matplotlib)."""

from __future__ import annotations

from typing import Any

from pyunicore_fast.cli.errors import CLIError


def write_chart(path: str, rows: list[Any], title: str) -> None:
    """Two panels: MiB/s over the stream count (one session) and over the session count
    (one stream each), from the plain download rows of a benchmark."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError("--chart needs matplotlib: pip install 'pyunicore_fast[bench]'") from None

    def series(key: str) -> tuple[list[int], list[float]]:
        points = {}
        for r in rows:
            if r.op != "download" or r.client != "pyunicore_fast" or r.encryption or r.compression:
                continue
            if r.rate_mib_s is None:
                continue
            if key == "streams" and r.sessions == 1:
                points[r.streams] = r.rate_mib_s
            elif key == "sessions" and r.streams == 1:
                points[r.sessions] = r.rate_mib_s
        xs = sorted(points)
        return xs, [points[x] for x in xs]

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, colour in ((axes[0], "streams", "tab:blue"), (axes[1], "sessions", "tab:orange")):
        xs, ys = series(key)
        if xs:
            ax.plot(xs, ys, marker="o", color=colour)
            ax.set_xticks(xs)
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("TCP streams per session" if key == "streams" else "parallel sessions (1 stream each)")
        ax.set_title(f"download throughput vs {key}")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0, top=(max(ys) * 1.15) if xs else None)
    axes[0].set_ylabel("MiB/s")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise CLIError(f"--chart {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
