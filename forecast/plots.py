#!/usr/bin/python3
"""Plots of the forecast evaluation (run by lull-forecast-eval after it wrote its CSVs).

bands_<dataset>.png : actual against the ensemble's mean and p50..p99 band for the first
                      evaluation series of each dataset, at horizons 1 and 12.
error_by_model.png  : MAE by model and horizon, one panel per dataset.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    bands = pd.read_csv(os.path.join(a.results, "bands.csv"))
    for ds, g in bands.groupby("dataset"):
        fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
        for ax, h in zip(axes, (1, 12)):
            s = g[g.horizon == h].sort_values("t").tail(600)
            ax.fill_between(s.t, s.p50, s.p99, color="tab:blue", alpha=0.15, label="p50..p99")
            ax.fill_between(s.t, s.p50, s.p95, color="tab:blue", alpha=0.25, label="p50..p95")
            ax.plot(s.t, s.actual, color="black", lw=0.8, label="actual")
            ax.plot(s.t, s["mean"], color="tab:red", lw=0.8, label="ensemble mean")
            ax.set_ylabel(f"h={h} utilization")
            ax.legend(loc="upper right", fontsize=7)
        axes[0].set_title(f"{ds}: {g.series.iloc[0]} (last 600 steps)")
        axes[1].set_xlabel("step")
        fig.tight_layout()
        fig.savefig(os.path.join(a.results, f"bands_{ds}.png"), dpi=90)
        plt.close(fig)
    m = pd.read_csv(os.path.join(a.results, "metrics.csv"))
    dss = list(dict.fromkeys(m.dataset))
    cols = 3
    rows = (len(dss) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(dss):]:
        ax.axis("off")
    for ax, ds in zip(axes.flat, dss):
        p = m[m.dataset == ds].pivot(index="model", columns="horizon", values="mae")
        p.plot.bar(ax=ax, legend=ds == dss[0], fontsize=7)
        ax.set_title(ds, fontsize=9)
        ax.set_ylabel("MAE")
        ax.set_xlabel("")
    fig.tight_layout()
    fig.savefig(os.path.join(a.results, "error_by_model.png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
