"""`--plot FILE.png|.svg`: throughput vs workers per batch size (matplotlib, optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlcheck.errors import UsageError

if TYPE_CHECKING:
    from dlcheck.profile.records import ProfileReport


def check_plot_path(path: str) -> None:
    """Reject a bad --plot before the sweep (suffix, matplotlib installed)."""
    from dlcheck.output import check_writable

    if not path.lower().endswith((".png", ".svg")):
        raise UsageError(f"--plot {path}: use a .png or .svg file name.")
    check_writable(path, "--plot")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib, which is not installed.",
            "pip install matplotlib (or 'dlcheck[plot]'), or drop --plot.",
        ) from None


def write_plot(report: ProfileReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlcheck.profile.search import estimates

    fig, ax = plt.subplots(figsize=(7, 4.2))
    sizes: list[int | None] = []
    for r in report.results:
        if r.setting.batch_size not in sizes:
            sizes.append(r.setting.batch_size)
    for bs in sizes:
        per_w: dict[int, tuple[float, float | None]] = {}
        for e in estimates([r for r in report.results if r.setting.batch_size == bs]).values():
            if e.samples_per_s and e.samples_per_s > per_w.get(e.setting.num_workers, (0, None))[0]:
                per_w[e.setting.num_workers] = (e.samples_per_s, e.rel_noise)
        if not per_w:
            continue
        ws = sorted(per_w)
        ys = [per_w[w][0] for w in ws]
        err = [per_w[w][0] * (per_w[w][1] or 0) for w in ws]
        ax.errorbar(ws, ys, yerr=err, marker="o", capsize=3, label=f"batch {bs or 'own'}")
    rec = report.recommended
    if rec and rec.samples_per_s:
        ax.scatter(
            [rec.num_workers],
            [rec.samples_per_s],
            s=160,
            facecolors="none",
            edgecolors="green",
            linewidths=2,
            label="recommended",
            zorder=5,
        )
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("num_workers")
    ax.set_ylabel("samples/s (steady state)")
    ax.set_title(f"dlcheck profile: {report.target}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        from dlcheck.output import os_error_cause

        raise UsageError(f"Cannot write --plot {path}: {os_error_cause(exc)}.") from None
    finally:
        plt.close(fig)
