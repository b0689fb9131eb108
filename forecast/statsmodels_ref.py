#!/usr/bin/python3
"""statsmodels' ARIMA on the evaluation's series and protocol - the reference.

Run by `make eval` (through lull-forecast-eval) with Debian's /usr/bin/python3. For each
series in the manifest (written by the evaluation), with warm-up W, refit period R and
fit window N (the same numbers our ARIMA uses):
  * at r = W, W+R, W+2R, ... it fits ARIMA(order) with a constant on y[r-N:r] (exact MLE,
    statsmodels' default), then runs the Kalman filter with those fixed parameters over
    the samples up to the next refit (missing samples are NaN, which the filter skips);
  * at every origin t (the last observed index, t >= W-1) the h-step forecast for
    h = 1, 3, 12 is propagated from the filter's predicted state a(t+1|t):
    a <- T a + c, y = Z a + d, with variance from P <- T P T' + R Q R' - exactly
    statsmodels' own forecast (checked against results.forecast()).
It writes one CSV row per series and horizon with sums (n, absolute, squared, scaled
absolute and pinball errors, p95 coverage, under-prediction) and the seconds spent,
so the C++ side aggregates them exactly as it does its own metrics. Seconds are
process CPU time (the machine is shared; wall time would measure the neighbours).
"""
import argparse
import csv
import math
import sys
import time
import warnings

import numpy as np

try:
    from statsmodels.tsa.arima.model import ARIMA
except ImportError:
    sys.exit("statsmodels_ref.py: statsmodels is missing; apt-get install python3-statsmodels")

HORIZONS = (1, 3, 12)
TAUS = (0.5, 0.9, 0.95, 0.99)
Z_TAUS = (0.0, 1.2815516, 1.6448536, 2.3263479)


def naive_mae(y):
    d = np.abs(np.diff(y))
    d = d[~np.isnan(d)]
    return float(d.mean()) if d.size else 0.0


def pinball(y, q, tau):
    return tau * (y - q) if y >= q else (1 - tau) * (q - y)


def run_series(y, warmup, refit, window, order, errors1=None):
    """Returns {h: dict of sums} and the number of fits; appends (t, |error|) of every
    scored 1-step forecast to errors1 when given (t = the origin)."""
    n = len(y)
    sums = {h: dict(n=0, sae=0.0, sse=0.0, sase=0.0, spin=0.0, cov=0, under=0) for h in HORIZONS}
    nm = naive_mae(y)
    fits = 0
    params = None
    res = None
    for r in range(warmup, n, refit):
        lo = max(0, r - window)
        seg_fit = y[lo:r]
        if np.sum(~np.isnan(seg_fit)) < 20:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = ARIMA(seg_fit, order=order, trend="c").fit()
                params = res.params
                fits += 1
            except Exception as e:  # a failed fit keeps the previous parameters
                print(f"statsmodels_ref: fit failed at r={r}: {e}", file=sys.stderr)
                if res is None:
                    continue
            hi = min(n, r + refit)
            res2 = res.apply(y[lo:hi])
        fr = res2.filter_results
        Zm = fr.design[:, :, 0]
        T = fr.transition[:, :, 0]
        c = fr.state_intercept[:, -1]
        d = fr.obs_intercept[:, -1]
        RQR = fr.selection[:, :, 0] @ fr.state_cov[:, :, 0] @ fr.selection[:, :, 0].T
        H = fr.obs_cov[0, 0, 0]
        # origins t = r-1 .. hi-2 (global), local column of a(t+1|t) is t+1-lo
        ts = np.arange(r - 1, hi - 1)
        cols = ts + 1 - lo
        A = fr.predicted_state[:, cols]
        P = fr.predicted_state_cov[:, :, cols]
        for h in range(1, max(HORIZONS) + 1):
            if h > 1:
                A = T @ A + c[:, None]
                P = np.einsum("ij,jkm,lk->ilm", T, P, T) + RQR[:, :, None]
            if h not in HORIZONS:
                continue
            mean = (Zm @ A)[0] + d[0]
            sd = np.sqrt(np.maximum(np.einsum("i,ijm,j->m", Zm[0], P, Zm[0]) + H, 0))
            s = sums[h]
            for k, t in enumerate(ts):
                if t + h >= n or math.isnan(y[t + h]):
                    continue
                yt = y[t + h]
                m = min(max(mean[k], 0.0), 1.0)  # forecasts are clamped to [0, 1] like ours
                e = yt - m
                s["n"] += 1
                s["sae"] += abs(e)
                s["sse"] += e * e
                s["sase"] += abs(e) / nm if nm > 0 else 0
                qs = [min(max(mean[k] + z * sd[k], 0.0), 1.0) for z in Z_TAUS]
                for j in range(1, 4):
                    qs[j] = max(qs[j], qs[j - 1])
                s["spin"] += 0.25 * sum(pinball(yt, q, tau) for q, tau in zip(qs, TAUS))
                s["cov"] += yt <= qs[2] + 1e-12
                s["under"] += yt > m + 1e-12
                if h == 1 and errors1 is not None:
                    errors1.append((t, abs(e)))
    return sums, fits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True, help="CSV: dataset,name,file,warmup")
    ap.add_argument("--out", required=True)
    ap.add_argument("--order", default="2,0,1")
    ap.add_argument("--refit", type=int, default=144)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--errors", help="also write every 1-step |error| here (dataset,series,t,abs_err)")
    a = ap.parse_args()
    order = tuple(int(v) for v in a.order.split(","))
    rows = []
    err_rows = []
    with open(a.manifest) as f:
        entries = list(csv.DictReader(f))
    for i, e in enumerate(entries):
        y = np.loadtxt(e["file"], ndmin=1)
        # SeriesForecaster's input policy: outside [0, 1.25] is rejected (the evaluation
        # feeds it as missing), (1, 1.25] is clamped to 1.
        y[(y < 0) | (y > 1.25)] = np.nan
        y = np.minimum(y, 1.0)
        t0 = time.process_time()  # CPU time: the machine is shared
        e1 = []
        sums, fits = run_series(y, int(e["warmup"]), a.refit, a.window, order, e1)
        err_rows.extend((e["dataset"], e["name"], t, "%.9g" % v) for t, v in e1)
        secs = time.process_time() - t0
        print(f"statsmodels ARIMA{order} {i + 1}/{len(entries)} {e['dataset']}/{e['name']}: "
              f"{len(y)} steps, {fits} fits, {secs:.2f} s", file=sys.stderr)
        for h in HORIZONS:
            s = sums[h]
            rows.append([e["dataset"], e["name"], h, s["n"], s["sae"], s["sse"], s["sase"],
                         s["spin"], s["cov"], s["under"], secs, fits])
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "series", "horizon", "n", "sae", "sse", "sase", "spin", "cov",
                    "under", "seconds", "fits"])
        w.writerows(rows)
    if a.errors:
        with open(a.errors, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["dataset", "series", "t", "abs_err"])
            w.writerows(err_rows)


if __name__ == "__main__":
    main()
