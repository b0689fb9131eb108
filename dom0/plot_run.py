#!/usr/bin/python3
"""Plot of `make run`: demand, prediction band, lent capacity and revocations.

Reads results/run/periods.csv written by `lulld --compare` and writes
results/run/lull_run.png: one panel per traced guest, for the lull policy, with the
oracle's lending as a dashed line for comparison. Debian's matplotlib and pandas only.
"""
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def main(out_dir):
    df = pd.read_csv(f"{out_dir}/periods.csv")
    lull = df[df.policy == "lull"]
    oracle = df[df.policy == "oracle"]
    guests = list(dict.fromkeys(lull.domid))
    fig, axes = plt.subplots(len(guests), 1, figsize=(12, 2.6 * len(guests)), sharex=True)
    if len(guests) == 1:
        axes = [axes]
    for ax, d in zip(axes, guests):
        g = lull[lull.domid == d]
        o = oracle[oracle.domid == d]
        h = g.t_s / 3600.0
        # Predictions are for the next period: shift them onto the period they predict.
        ax.fill_between(h.shift(-1), g.pred_p50, g.pred_p95, color="tab:orange", alpha=0.3,
                        step="post", label="predicted peak p50-p95")
        ax.plot(h, g.demand_peak, color="tab:blue", lw=0.8, label="demand (peak per minute)")
        ax.fill_between(h, 0, g.lent_cpus, color="tab:green", alpha=0.35, step="post", label="lent (lull)")
        ax.plot(o.t_s / 3600.0, o.lent_cpus, color="black", lw=0.6, ls="--", label="lent (oracle)")
        rv = g[g.revocations > 0]
        ax.scatter(rv.t_s / 3600.0, rv.demand_peak, color="red", marker="v", s=18, zorder=5, label="revocation")
        ax.set_ylabel(f"{g.name.iloc[0]}\nCPUs")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("simulated hours")
    fig.suptitle("lulld on the simulated host: demand, prediction band, lent capacity, revocations")
    fig.tight_layout()
    fig.savefig(f"{out_dir}/lull_run.png", dpi=110)
    print(f"wrote {out_dir}/lull_run.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/run")
