#!/usr/bin/env python3
"""Issue 5 benchmark: `patron analyze` against its Python peers, in the same run.

1. RFM: a deterministic CSV of purchases (member_id,date,amount), scored by
   `patron analyze rfm` (release binary) and by DuckDB running the same RFM with NTILE(5)
   and the same tie-breakers, both writing the full CSV. The two outputs are compared.
2. CLV: customers' (x, t_x, T, monetary) drawn from the BG/NBD and Gamma-Gamma generative
   processes, fitted by `patron analyze clv --format summary` and by the `lifetimes` package
   (BetaGeoFitter + GammaGammaFitter), parameters compared to 1e-4 relative.
3. Baskets: a deterministic CSV of purchase lines (member_id,date,document_id,category,sku),
   frequent category pairs by `patron analyze baskets --level category` and by DuckDB (a
   self-join of the distinct (basket, category) rows on category pairs), both writing the
   full CSV; the outputs are compared. `patron` with SKU pairs and next categories is timed
   too (no DuckDB counterpart).

Not part of `cargo test`. Needs `pip install duckdb lifetimes` (a venv under /tmp works):

    python3 -m venv /tmp/patron-bench-venv
    /tmp/patron-bench-venv/bin/pip install duckdb lifetimes
    cargo build --release -p patron-cli
    /tmp/patron-bench-venv/bin/python bench/analytics/run.py --rows 10000000 --customers 1000000

Timings are wall-clock, best of --repeat runs, files in the OS cache (each input is read once
before timing). Data goes to --work (default /tmp/patron-bench-analytics) and is reused when
it exists with the same parameters.
"""

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AS_OF = "2024-12-31"

# The default R x F grid of docs/ANALYTICS.md: rows R = 5..1, columns F = 1..5.
GRID = [
    ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    ["About To Sleep", "About To Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
]

# CDNOW-like parameters (Fader, Hardie & Lee 2005; Fader & Hardie's Gamma-Gamma note).
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def log(message):
    print(message, file=sys.stderr, flush=True)


def best_of(repeat, function):
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def generate_purchases(path, rows, members, seed):
    """rows purchases: member ids 1..members (skewed: some members buy much more), dates over
    2023-2024, amounts 0.50-300.00 in cents, written as CSV with a header."""
    marker = f"{path}.params"
    params = f"{rows} {members} {seed}"
    if os.path.exists(path) and os.path.exists(marker) and open(marker).read() == params:
        log(f"reusing {path}")
        return
    log(f"generating {rows:,} purchases into {path}")
    rng = np.random.default_rng(seed)
    days = [(datetime.date(2023, 1, 1) + datetime.timedelta(days=d)).isoformat() for d in range(731)]
    days = np.array(days, dtype=object)
    chunk = 1_000_000
    with open(path, "w", newline="") as out:
        out.write("member_id,date,amount\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            member = (members * rng.power(0.6, n)).astype(np.int64) + 1  # more small ids
            member = np.minimum(member, members)
            date = days[rng.integers(0, 731, n)]
            cents = rng.integers(50, 30_001, n)
            frame = pd.DataFrame(
                {
                    "member_id": member,
                    "date": date,
                    "amount": [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()],
                }
            )
            frame.to_csv(out, header=False, index=False, lineterminator="\n")
    open(marker, "w").write(params)


def rfm_patron(patron, csv_path, out_path):
    subprocess.run(
        [patron, "analyze", "rfm", "--transactions", csv_path, "--as-of", AS_OF, "--out", out_path],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def rfm_duckdb(csv_path, out_path):
    import duckdb

    segments = ", ".join(
        f"({5 - row}, {f + 1}, '{name.replace(chr(39), chr(39) * 2)}')"
        for row, names in enumerate(GRID)
        for f, name in enumerate(names)
    )
    sql = f"""
    COPY (
      WITH totals AS (
        SELECT member_id, max(date) AS last, count(*) AS frequency, sum(amount) AS monetary
        FROM read_csv('{csv_path}', header = true,
                      columns = {{'member_id': 'BIGINT', 'date': 'DATE', 'amount': 'DECIMAL(18,2)'}})
        WHERE date <= DATE '{AS_OF}'
        GROUP BY member_id
      ), scored AS (
        SELECT member_id, DATE '{AS_OF}' - last AS recency_days, frequency, monetary,
               NTILE(5) OVER (ORDER BY DATE '{AS_OF}' - last DESC, member_id) AS r,
               NTILE(5) OVER (ORDER BY frequency, member_id) AS f,
               NTILE(5) OVER (ORDER BY monetary, member_id) AS m
        FROM totals
      ), grid(r, f, segment) AS (VALUES {segments})
      SELECT member_id, recency_days, frequency, monetary, scored.r, scored.f, m, segment
      FROM scored JOIN grid ON scored.r = grid.r AND scored.f = grid.f
      ORDER BY member_id
    ) TO '{out_path}' (HEADER, DELIMITER ',')
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(sql)
    con.close()


BASKET_MIN_SUPPORT = 0.001


def generate_basket_lines(path, lines, members, seed):
    """About `lines` purchase lines in baskets of 1-12 lines (mean ~3.5): 200 categories with
    skewed popularity and a per-basket "theme" that makes neighbouring categories go
    together, 250 SKUs per category (skewed), dates over 2024, one document id per basket;
    the lines of a basket are adjacent."""
    marker = f"{path}.params"
    params = f"{lines} {members} {seed}"
    if os.path.exists(path) and os.path.exists(marker) and open(marker).read() == params:
        log(f"reusing {path}")
        return
    log(f"generating ~{lines:,} purchase lines into {path}")
    rng = np.random.default_rng(seed)
    days = np.array(
        [(datetime.date(2024, 1, 1) + datetime.timedelta(days=d)).isoformat() for d in range(366)], dtype=object
    )
    chunk_baskets = 300_000
    written = 0
    document = 0
    with open(path, "w", newline="") as out:
        out.write("member_id,date,document_id,category,sku\n")
        while written < lines:
            sizes = np.minimum(1 + rng.poisson(2.5, chunk_baskets), 12)
            n = int(sizes.sum())
            basket = np.repeat(np.arange(chunk_baskets), sizes)
            member = (members * rng.power(0.6, chunk_baskets)).astype(np.int64) + 1
            theme = (200 * rng.power(0.4, chunk_baskets)).astype(np.int64) % 200
            near = (theme[basket] + rng.integers(-2, 3, n)) % 200
            anywhere = (200 * rng.power(0.4, n)).astype(np.int64) % 200
            category = np.where(rng.random(n) < 0.6, near, anywhere)
            sku = category * 250 + (250 * rng.power(0.3, n)).astype(np.int64) % 250
            frame = pd.DataFrame(
                {
                    "member_id": member[basket],
                    "date": days[rng.integers(0, 366, chunk_baskets)][basket],
                    "document_id": document + basket,
                    "category": np.char.add("cat", category.astype(str)),
                    "sku": np.char.add("S", sku.astype(str)),
                }
            )
            frame.to_csv(out, header=False, index=False, lineterminator="\n")
            written += n
            document += chunk_baskets
    open(marker, "w").write(params)


def baskets_patron(patron, csv_path, out_path, level, next_out=None):
    command = [patron, "analyze", "baskets", "--transactions", csv_path, "--level", level,
               "--min-support", str(BASKET_MIN_SUPPORT), "--out", out_path]
    if next_out:
        command += ["--next-out", next_out]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def baskets_duckdb(csv_path, out_path):
    import duckdb

    sql = f"""
    COPY (
      WITH items AS (
        SELECT DISTINCT member_id, document_id, category
        FROM read_csv('{csv_path}', header = true,
                      columns = {{'member_id': 'BIGINT', 'date': 'DATE', 'document_id': 'BIGINT',
                                  'category': 'VARCHAR', 'sku': 'VARCHAR'}})
      ), n AS (
        SELECT count(*)::DOUBLE AS n FROM (SELECT DISTINCT member_id, document_id FROM items)
      ), single AS (
        SELECT category, count(*) AS c FROM items GROUP BY category
      ), pairs AS (
        SELECT x.category AS a, y.category AS b, count(*) AS together
        FROM items x JOIN items y
          ON x.member_id = y.member_id AND x.document_id = y.document_id AND x.category < y.category
        GROUP BY ALL
      )
      SELECT 'category' AS level, a, b, together AS baskets_with_both,
             printf('%.6f', together / n) AS support,
             printf('%.6f', together / sa.c) AS confidence_a_to_b,
             printf('%.6f', together / sb.c) AS confidence_b_to_a,
             printf('%.6f', together * n / (sa.c::DOUBLE * sb.c)) AS lift
      FROM pairs, n, single sa, single sb
      WHERE sa.category = a AND sb.category = b AND together / n >= {BASKET_MIN_SUPPORT}
      ORDER BY together DESC, a, b
    ) TO '{out_path}' (HEADER, DELIMITER ',', QUOTE '')
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(sql)
    con.close()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def generate_customers(path, customers, seed):
    """customers from the BG/NBD story (rate λ ~ Gamma(r, α), dropout p ~ Beta(a, b) after each
    repeat purchase) over a 39-week calibration with first purchases spread over 12 weeks, on
    a day grid (t_x and T whole days / 7, like data from a till), and average repeat spend
    from the Gamma-Gamma story (rounded to cents)."""
    marker = f"{path}.params"
    params = f"{customers} {seed}"
    if os.path.exists(path) and os.path.exists(marker) and open(marker).read() == params:
        log(f"reusing {path}")
        return
    log(f"simulating {customers:,} customers into {path}")
    rng = np.random.default_rng(seed)
    n = customers
    T_days = 273 - rng.integers(0, 84, n)
    T = T_days / 7.0
    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n)
    p = rng.beta(BGNBD["a"], BGNBD["b"], n)
    t = np.zeros(n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.nonzero(active)[0]
        t[idx] += rng.exponential(1.0 / lam[idx])
        bought = t[idx] <= T[idx]
        buyers = idx[bought]
        x[buyers] += 1
        t_x[buyers] = t[buyers]
        dropped = rng.random(len(buyers)) < p[buyers]
        active[idx[~bought]] = False
        active[buyers[dropped]] = False
    t_x_days = np.minimum(np.floor(t_x * 7.0), T_days)
    t_x_days[x == 0] = 0
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["v"], n)
    repeat = x > 0
    zbar = np.zeros(n)
    zbar[repeat] = rng.gamma(GAMMA_GAMMA["p"] * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    zbar = np.round(zbar, 2)
    frame = pd.DataFrame(
        {
            "member_id": np.arange(1, n + 1),
            "x": x,
            "t_x": [f"{d / 7.0:.6f}" for d in t_x_days.tolist()],
            "T": [f"{d / 7.0:.6f}" for d in T_days.tolist()],
            "monetary": [f"{z:.2f}" for z in zbar.tolist()],
        }
    )
    frame.to_csv(path, index=False, lineterminator="\n")
    open(marker, "w").write(params)


def clv_patron(patron, summary_path):
    done = subprocess.run(
        [patron, "analyze", "clv", "--format", "summary", "--transactions", summary_path, "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def clv_lifetimes(summary_path, weighted):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    data = pd.read_csv(summary_path)
    started = time.perf_counter()
    if weighted:
        grouped = data.groupby(["x", "t_x", "T"]).size().reset_index(name="weight")
        bg = BetaGeoFitter().fit(grouped["x"], grouped["t_x"], grouped["T"], weights=grouped["weight"])
    else:
        bg = BetaGeoFitter().fit(data["x"], data["t_x"], data["T"])
    repeat = data[(data["x"] > 0) & (data["monetary"] > 0)]
    gg = GammaGammaFitter().fit(repeat["x"], repeat["monetary"])
    fit_seconds = time.perf_counter() - started
    return fit_seconds, dict(bg.params_), dict(gg.params_)


def relative(a, b):
    return abs(a - b) / abs(b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", default="/tmp/patron-bench-analytics")
    parser.add_argument("--patron", default=os.path.join(ROOT, "target", "release", "patron"))
    parser.add_argument("--skip-rfm", action="store_true")
    parser.add_argument("--skip-clv", action="store_true")
    parser.add_argument("--basket-lines", type=int, default=10_000_000)
    parser.add_argument("--skip-baskets", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = {"rows": args.rows, "members": args.members, "customers": args.customers, "cores": os.cpu_count()}

    if not args.skip_rfm:
        csv_path = os.path.join(args.work, f"purchases-{args.rows}.csv")
        generate_purchases(csv_path, args.rows, args.members, seed=5)
        warm(csv_path)
        ours_out = os.path.join(args.work, "rfm-patron.csv")
        duck_out = os.path.join(args.work, "rfm-duckdb.csv")
        log("timing patron analyze rfm")
        ours, _ = best_of(args.repeat, lambda: rfm_patron(args.patron, csv_path, ours_out))
        log("timing DuckDB")
        duck, _ = best_of(args.repeat, lambda: rfm_duckdb(csv_path, duck_out))
        same = sha256(ours_out) == sha256(duck_out)
        results["rfm"] = {
            "patron_seconds": ours,
            "duckdb_seconds": duck,
            "patron_over_duckdb": ours / duck,
            "identical_output": same,
            "input_bytes": os.path.getsize(csv_path),
        }
        log(json.dumps(results["rfm"]))

    if not args.skip_clv:
        summary_path = os.path.join(args.work, f"customers-{args.customers}.csv")
        generate_customers(summary_path, args.customers, seed=8)
        warm(summary_path)
        log("timing patron analyze clv")
        wall, report = best_of(args.repeat, lambda: clv_patron(args.patron, summary_path))
        ours_fit = report["seconds"]["fit"]
        log("timing lifetimes (one row per customer)")
        life_fit, life_bg, life_gg = clv_lifetimes(summary_path, weighted=False)
        log("timing lifetimes (weights over distinct tuples)")
        life_w_fit, life_w_bg, life_w_gg = clv_lifetimes(summary_path, weighted=True)
        diffs = {k: relative(report["bgnbd"][k], life_bg[k]) for k in ("r", "alpha", "a", "b")}
        diffs.update({k: relative(report["gamma_gamma"][k], life_gg[k]) for k in ("p", "q", "v")})
        diffs_w = {k: relative(report["bgnbd"][k], life_w_bg[k]) for k in ("r", "alpha", "a", "b")}
        results["clv"] = {
            "patron_wall_seconds": wall,
            "patron_fit_seconds": ours_fit,
            "patron_read_seconds": report["seconds"]["read"],
            "distinct_tuples": report["distinct_tuples"],
            "lifetimes_fit_seconds": life_fit,
            "lifetimes_weighted_fit_seconds": life_w_fit,
            "fit_speedup": life_fit / ours_fit,
            "wall_speedup": life_fit / wall,
            "weighted_fit_speedup": life_w_fit / ours_fit,
            "patron": {"bgnbd": report["bgnbd"], "gamma_gamma": report["gamma_gamma"]},
            "lifetimes": {"bgnbd": life_bg, "gamma_gamma": life_gg},
            "max_relative_difference": max(diffs.values()),
            "relative_differences": diffs,
            "weighted_max_relative_difference": max(diffs_w.values()),
        }
        log(json.dumps(results["clv"]))

    if not args.skip_baskets:
        csv_path = os.path.join(args.work, f"basket-lines-{args.basket_lines}.csv")
        generate_basket_lines(csv_path, args.basket_lines, args.members, seed=11)
        warm(csv_path)
        ours_out = os.path.join(args.work, "pairs-patron.csv")
        duck_out = os.path.join(args.work, "pairs-duckdb.csv")
        log("timing patron analyze baskets --level category")
        ours, _ = best_of(args.repeat, lambda: baskets_patron(args.patron, csv_path, ours_out, "category"))
        log("timing DuckDB category pairs")
        duck, _ = best_of(args.repeat, lambda: baskets_duckdb(csv_path, duck_out))
        log("timing patron analyze baskets --level both --next-out")
        full_out = os.path.join(args.work, "pairs-both-patron.csv")
        next_out = os.path.join(args.work, "next-patron.csv")
        full, _ = best_of(
            args.repeat, lambda: baskets_patron(args.patron, csv_path, full_out, "both", next_out)
        )
        with open(ours_out) as f:
            pairs = sum(1 for _ in f) - 1
        with open(full_out) as f:
            sku_pairs = sum(1 for line in f if line.startswith("sku,"))
        results["baskets"] = {
            "input_bytes": os.path.getsize(csv_path),
            "min_support": BASKET_MIN_SUPPORT,
            "category_pairs": pairs,
            "sku_pairs": sku_pairs,
            "patron_category_seconds": ours,
            "duckdb_category_seconds": duck,
            "patron_over_duckdb": ours / duck,
            "identical_output": sha256(ours_out) == sha256(duck_out),
            "patron_both_and_next_seconds": full,
        }
        log(json.dumps(results["baskets"]))

    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
