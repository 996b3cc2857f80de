#!/usr/bin/env python3
"""Joins the CSVs written by bench/perf-table.sh into its one table (standard library only).

Reads DIR/m-*.csv (mantissa-bench-train) and DIR/p-*.csv (bench/pytorch/compare.py), writes
the table as CSV (--csv) and Markdown (stdout). Sections:
  compare  fp32 per model and thread count: Mantissa vs PyTorch images/s; scaling = parallel
           efficiency, images/s at T threads / (T/T0 x images/s at the first count T0);
  formats  every recipe on resnet20: time per step / Mantissa fp32 (same process); the speedup
           column compares each recipe with PyTorch fp32;
  batch    resnet20 fp32: scaling = images/s / images/s at the main batch;
  depth    resnetN fp32: scaling = training step time / resnet20's.
speedup = Mantissa images/s / PyTorch images/s (> 1: Mantissa faster).
"""

import argparse
import csv
import glob
import os
import sys


def read(pattern):
    rows = []
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def ints(text):
    return [int(v) for v in text.split(",") if v]


def names(text):
    return [v for v in text.split(",") if v]


def num(row, key):
    if row is None or row.get(key) in (None, ""):
        return None
    v = float(row[key])
    return v if v > 0 else None


def ratio(a, b):
    return a / b if a is not None and b is not None else None


COLUMNS = ["section", "model", "recipe", "threads", "batch", "params", "pytorch_params",
           "mantissa_train_ips", "pytorch_train_ips", "train_speedup",
           "mantissa_infer_ips", "pytorch_infer_ips", "infer_speedup",
           "train_time_vs_fp32", "infer_time_vs_fp32",
           "scaling_mantissa", "scaling_pytorch",
           "mantissa_state_mib", "mantissa_train_peak_mib", "mantissa_infer_peak_mib",
           "mantissa_peak_rss_mib", "pytorch_peak_rss_mib"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batches", default="32,64,128,256")
    p.add_argument("--depths", default="resnet20,resnet56,resnet110")
    p.add_argument("--models", default="resnet20,resnet56,resnet110,alexnet-small,dcgan")
    p.add_argument("--csv", default="")
    a = p.parse_args()
    threads, batches = ints(a.threads), ints(a.batches)
    main_t = threads[-1]

    formats = read(os.path.join(a.dir, "m-formats.csv"))
    mantissa = read(os.path.join(a.dir, "m-compare-*.csv")) + read(os.path.join(a.dir, "m-batch.csv"))
    pytorch = read(os.path.join(a.dir, "p-*.csv"))
    m_fp32 = {(r["model"], int(r["threads"]), int(r["batch"])): r
              for r in mantissa if r["recipe"] == "fp32"}
    pt = {(r["model"], int(r["threads"]), int(r["batch"])): r for r in pytorch}

    table, mismatches = [], set()

    def row(section, model, t, b, m, q, scaling_m=None, scaling_p=None):
        out = {"section": section, "model": model, "recipe": m["recipe"] if m else "fp32",
               "threads": t, "batch": b,
               "params": m["params"] if m else "", "pytorch_params": q["params"] if q else "",
               "mantissa_train_ips": num(m, "train_images_per_sec"),
               "pytorch_train_ips": num(q, "train_images_per_sec"),
               "mantissa_infer_ips": num(m, "infer_images_per_sec"),
               "pytorch_infer_ips": num(q, "infer_images_per_sec"),
               "train_time_vs_fp32": num(m, "train_time_ratio") if section == "formats" else None,
               "infer_time_vs_fp32": num(m, "infer_time_ratio") if section == "formats" else None,
               "scaling_mantissa": scaling_m, "scaling_pytorch": scaling_p,
               "mantissa_state_mib": num(m, "state_mib"),
               "mantissa_train_peak_mib": num(m, "train_peak_mib"),
               "mantissa_infer_peak_mib": num(m, "infer_peak_mib"),
               "mantissa_peak_rss_mib": num(m, "peak_rss_mib"),
               "pytorch_peak_rss_mib": num(q, "peak_rss_mib")}
        out["train_speedup"] = ratio(out["mantissa_train_ips"], out["pytorch_train_ips"])
        out["infer_speedup"] = ratio(out["mantissa_infer_ips"], out["pytorch_infer_ips"])
        if m and q and m["params"] != q["params"]:
            mismatches.add("%s: Mantissa %s parameters, PyTorch %s" % (model, m["params"],
                                                                          q["params"]))
        table.append(out)

    for model in names(a.models):
        base = (m_fp32.get((model, threads[0], a.batch)), pt.get((model, threads[0], a.batch)))
        for t in threads:
            m, q = m_fp32.get((model, t, a.batch)), pt.get((model, t, a.batch))
            if m is None and q is None:
                continue
            eff = lambda r, r0: (ratio(num(r, "train_images_per_sec"),
                                       num(r0, "train_images_per_sec")) / (t / threads[0])
                                 if t != threads[0] and num(r, "train_images_per_sec")
                                 and num(r0, "train_images_per_sec") else None)
            row("compare", model, t, a.batch, m, q, eff(m, base[0]), eff(q, base[1]))
    for m in formats:
        t, b = int(m["threads"]), int(m["batch"])
        row("formats", m["model"], t, b, m, pt.get((m["model"], t, b)))
    m0, q0 = m_fp32.get(("resnet20", main_t, a.batch)), pt.get(("resnet20", main_t, a.batch))
    if len(batches) > 1:
        for b in batches:
            m, q = m_fp32.get(("resnet20", main_t, b)), pt.get(("resnet20", main_t, b))
            if m or q:
                row("batch", "resnet20", main_t, b, m,  q,
                    ratio(num(m, "train_images_per_sec"), num(m0, "train_images_per_sec")),
                    ratio(num(q, "train_images_per_sec"), num(q0, "train_images_per_sec")))
    if len(names(a.depths)) > 1:
        for model in names(a.depths):
            m, q = m_fp32.get((model, main_t, a.batch)), pt.get((model, main_t, a.batch))
            if m or q:
                row("depth", model, main_t, a.batch, m, q,
                    ratio(num(m, "train_step_ms"), num(m0, "train_step_ms")),
                    ratio(num(q, "train_step_ms"), num(q0, "train_step_ms")))

    def fmt(v, digits):
        return "" if v is None else ("%.*f" % (digits, v))

    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            for r in table:
                w.writerow([fmt(r[c], 3) if isinstance(r[c], float) else r[c] for c in COLUMNS])

    def md(v, digits, suffix=""):
        return "-" if v is None else ("%.*f" % (digits, v)) + suffix

    def pair(x, y, digits):
        return "%s / %s" % (md(x, digits), md(y, digits))

    print("| section | model | recipe | threads | batch | params | train img/s Mantissa / PyTorch "
          "| train speedup | inference img/s Mantissa / PyTorch | inference speedup "
          "| time vs fp32 train / inference | scaling Mantissa / PyTorch "
          "| Mantissa peak MiB state / train / inference | peak RSS MiB Mantissa / PyTorch |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        params = r["params"] or r["pytorch_params"]
        if r["params"] and r["pytorch_params"] and r["params"] != r["pytorch_params"]:
            params = "%s (PyTorch %s)" % (r["params"], r["pytorch_params"])
        vs = ("%s / %s" % (md(r["train_time_vs_fp32"], 2, "x"), md(r["infer_time_vs_fp32"], 2, "x"))
              if r["section"] == "formats" else "-")
        sc = ("-" if r["scaling_mantissa"] is None and r["scaling_pytorch"] is None
              else pair(r["scaling_mantissa"], r["scaling_pytorch"], 2))
        mem = "%s / %s / %s" % (md(r["mantissa_state_mib"], 0), md(r["mantissa_train_peak_mib"], 0),
                                md(r["mantissa_infer_peak_mib"], 0))
        print("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["section"], r["model"], r["recipe"], r["threads"], r["batch"], params,
            pair(r["mantissa_train_ips"], r["pytorch_train_ips"], 0), md(r["train_speedup"], 2, "x"),
            pair(r["mantissa_infer_ips"], r["pytorch_infer_ips"], 0), md(r["infer_speedup"], 2, "x"),
            vs, sc, mem, pair(r["mantissa_peak_rss_mib"], r["pytorch_peak_rss_mib"], 0)))
    print()
    print("speedup = Mantissa images/s / PyTorch images/s (formats rows: the recipe vs PyTorch "
          "fp32). time vs fp32 = step time / Mantissa fp32 step time in the same process. "
          "scaling: compare = parallel efficiency vs %d thread(s); batch = images/s vs batch %d; "
          "depth = step time vs resnet20. Peak RSS is per process (formats: all recipes in one)."
          % (threads[0], a.batch))
    for line in sorted(mismatches):
        print("PARAMETER COUNT MISMATCH: " + line)
        print("PARAMETER COUNT MISMATCH: " + line, file=sys.stderr)


if __name__ == "__main__":
    main()
