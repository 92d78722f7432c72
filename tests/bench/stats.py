#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""stats.py OUT: the statistics of `make bench` (Python standard library only).

Reads OUT/samples.tsv (arch, mode, boot, round, op, ns), OUT/swaps.tsv
(arch, boot, to, devices, iter, total, check, save, unload, load, deps,
restore, reopen; ns, -1 for a step not seen) and OUT/dkms.tsv (arch,
kernel, what, value, unit). Writes OUT/stats.json, OUT/ops.dat and
OUT/swaps.dat (for plot.gp) and prints the table.

Per operation and vfio.ko: the median and p99 of all samples (pooled over
boots), the median of each boot (or round) and their spread (max/min: the
boot-to-boot noise), and a 95% bootstrap confidence interval of the median.
The ratio ours/stock of the medians gets a 95% CI from the same bootstrap.
The bootstrap is two-level, because samples of one boot are not independent
of each other: each replicate draws the boots with replacement, then the
samples within each drawn boot with replacement, and takes the median of
what it drew. BENCH_BOOTSTRAP replicates (default 1000), seeded, so the
same samples give the same intervals.
"""
import json
import os
import random
import sys
from collections import defaultdict

OUT = sys.argv[1]
B = int(os.environ.get("BENCH_BOOTSTRAP", "1000"))
rng = random.Random(14)

OP_ORDER = [
    "open_close_pci", "open_close_mdev", "open_close_pci_vm", "open_close_mdev_vm",
    "get_info", "config_pread", "group_status", "zero_pread",
    "map_4k", "unmap_4k", "map_2m", "unmap_2m",
    "map_4k_4t", "unmap_4k_4t", "map_2m_4t", "unmap_2m_4t",
    "kvm_group_add", "kvm_group_del", "vm_create_destroy",
]
STEPS = ["check", "save", "unload", "load", "deps", "restore", "reopen"]
# "other": the rest of the total (vfio-swap's own work between the steps).
ALL_STEPS = STEPS + ["other"]


def rows(name):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def quantile(sorted_v, q):
    """The q-quantile of sorted values, linear interpolation (numpy's default)."""
    if not sorted_v:
        return None
    pos = (len(sorted_v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_v) - 1)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (pos - lo)


def median(v):
    return quantile(sorted(v), 0.5)


def boot_medians(clusters):
    """B bootstrap replicates of the pooled median (two-level)."""
    keys = list(clusters)
    out = []
    for _ in range(B):
        drawn = []
        for k in rng.choices(keys, k=len(keys)):
            c = clusters[k]
            drawn.extend(rng.choices(c, k=len(c)))
        drawn.sort()
        out.append(quantile(drawn, 0.5))
    return out


def op_key(op):
    if op in OP_ORDER:
        return (OP_ORDER.index(op), 0, op)
    if op.startswith("release_open_"):
        return (len(OP_ORDER), int(op[len("release_open_"):-2]), op)
    return (len(OP_ORDER) + 1, 0, op)


def fmt_ns(ns):
    if ns is None:
        return "-"
    if ns >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    return "%.1f us" % (ns / 1e3)


def ops_stats():
    # arch -> op -> mode -> (boot, round) -> [ns]
    data = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for arch, mode, boot, rnd, op, ns in rows("samples.tsv"):
        data[arch][op][mode][(boot, rnd)].append(int(ns))
    result = []
    for arch in sorted(data):
        for op in sorted(data[arch], key=op_key):
            entry = {"arch": arch, "op": op}
            reps = {}
            for mode in ("stock", "ours"):
                clusters = data[arch][op].get(mode)
                if not clusters:
                    continue
                pooled = sorted(v for c in clusters.values() for v in c)
                per_boot = [median(c) for c in clusters.values()]
                reps[mode] = boot_medians(clusters)
                r = sorted(reps[mode])
                entry[mode] = {
                    "n": len(pooled), "boots": len(clusters),
                    "median_ns": quantile(pooled, 0.5), "p99_ns": quantile(pooled, 0.99),
                    "ci95_ns": [quantile(r, 0.025), quantile(r, 0.975)],
                    "boot_medians_ns": per_boot,
                    "boot_spread": max(per_boot) / min(per_boot) if min(per_boot) > 0 else None,
                }
            if "stock" in entry and "ours" in entry and entry["stock"]["median_ns"]:
                entry["ratio"] = entry["ours"]["median_ns"] / entry["stock"]["median_ns"]
                ratios = sorted(o / s for o, s in zip(reps["ours"], reps["stock"]) if s)
                entry["ratio_ci95"] = [quantile(ratios, 0.025), quantile(ratios, 0.975)]
            result.append(entry)
    return result


def swap_stats():
    groups = defaultdict(list)
    for r in rows("swaps.tsv"):
        arch, _boot, to, k = r[0], r[1], r[2], int(r[3])
        vals = [int(x) for x in r[5:13]]
        d = dict(zip(["total"] + STEPS, vals))
        d["other"] = d["total"] - sum(d[s] for s in STEPS if d[s] >= 0)
        groups[(arch, to, k)].append(d)
    result = []
    for (arch, to, k) in sorted(groups, key=lambda g: (g[0], g[2], g[1])):
        g = groups[(arch, to, k)]
        tot = sorted(x["total"] for x in g)
        steps = {}
        for s in ALL_STEPS:
            seen = [x[s] for x in g if x[s] >= 0]
            steps[s] = median(seen) if seen else None
        known = {s: v for s, v in steps.items() if v is not None}
        result.append({
            "arch": arch, "to": to, "devices": k, "n": len(g),
            "total_median_ns": quantile(tot, 0.5), "total_p99_ns": quantile(tot, 0.99),
            "total_max_ns": tot[-1], "steps_median_ns": steps,
            "dominant_step": max(known, key=known.get) if known else None,
        })
    return result


def dkms_stats():
    groups = defaultdict(list)
    for arch, kernel, what, value, unit in rows("dkms.tsv"):
        groups[(arch, kernel, what, unit)].append(float(value))
    return [{"arch": a, "kernel": k, "what": w, "unit": u, "values": v, "median": median(v)}
            for (a, k, w, u), v in sorted(groups.items())]


def main():
    ops = ops_stats()
    swaps = swap_stats()
    dkms = dkms_stats()
    with open(os.path.join(OUT, "stats.json"), "w") as f:
        json.dump({"bootstrap_replicates": B, "ops": ops, "swaps": swaps, "dkms": dkms}, f,
                  indent=1)

    # gnuplot data: one line per operation with both vfio.ko (us), and the ratio.
    with open(os.path.join(OUT, "ops.dat"), "w") as f:
        f.write("# i label stock lo hi ours lo hi ratio lo hi\n")
        for i, e in enumerate(x for x in ops if "ratio" in x):
            s, o = e["stock"], e["ours"]
            label = e["op"] if e["arch"] == "amd64" else "%s (%s)" % (e["op"], e["arch"])
            f.write("%d \"%s\" %g %g %g %g %g %g %g %g %g\n" % (
                i, label.replace("_", "\\\\_"),
                s["median_ns"] / 1e3, s["ci95_ns"][0] / 1e3, s["ci95_ns"][1] / 1e3,
                o["median_ns"] / 1e3, o["ci95_ns"][0] / 1e3, o["ci95_ns"][1] / 1e3,
                e["ratio"], e["ratio_ci95"][0], e["ratio_ci95"][1]))
    with open(os.path.join(OUT, "swaps.dat"), "w") as f:
        f.write("# label " + " ".join(ALL_STEPS) + " (ms)\n")
        for e in swaps:
            label = "to-%s %d%s" % (e["to"], e["devices"], "" if e["arch"] == "amd64" else " " + e["arch"])
            f.write("\"%s\" %s\n" % (label, " ".join(
                "%g" % ((e["steps_median_ns"][s] or 0) / 1e6) for s in ALL_STEPS)))

    print("Ops 1-5: median and p99 over all boots; ratio = ours/stock of the medians,")
    print("[95%% bootstrap CI, two-level: boots, then samples; %d replicates];" % B)
    print("spread = max/min of the per-boot medians (boot-to-boot noise), stock / ours.")
    hdr = "%-6s %-19s %6s %10s %10s %10s %10s  %-21s %s" % (
        "arch", "operation", "n", "stock med", "stock p99", "ours med", "ours p99",
        "ours/stock [95% CI]", "spread")
    print(hdr)
    print("-" * len(hdr))
    for e in ops:
        s, o = e.get("stock"), e.get("ours")
        ratio = "%.3f [%.3f, %.3f]" % (e["ratio"], *e["ratio_ci95"]) if "ratio" in e else "-"
        spread = "%s / %s" % tuple("%.2f" % x["boot_spread"] if x and x["boot_spread"] else "-"
                                   for x in (s, o))
        print("%-6s %-19s %6s %10s %10s %10s %10s  %-21s %s" % (
            e["arch"], e["op"], (s or o)["n"], fmt_ns(s and s["median_ns"]),
            fmt_ns(s and s["p99_ns"]), fmt_ns(o and o["median_ns"]), fmt_ns(o and o["p99_ns"]),
            ratio, spread))
    if swaps:
        print()
        print("Op 6: vfio-swap downtime, from its start until every device is bound and opens")
        print("(median; p99 of n swaps; steps: medians, timed through vfio-swap's programs)")
        hdr = "%-6s %-9s %4s %3s %10s %10s  %s" % (
            "arch", "swap", "devs", "n", "median", "p99", " ".join("%8s" % s for s in ALL_STEPS))
        print(hdr)
        print("-" * len(hdr))
        for e in swaps:
            print("%-6s %-9s %4d %3d %10s %10s  %s  dominant: %s" % (
                e["arch"], "to-" + e["to"], e["devices"], e["n"], fmt_ns(e["total_median_ns"]),
                fmt_ns(e["total_p99_ns"]),
                " ".join("%8s" % fmt_ns(e["steps_median_ns"][s]).replace(" ", "")
                         for s in ALL_STEPS), e["dominant_step"]))
    if dkms:
        print()
        print("Op 7: DKMS build (median of the timed builds) and module size")
        for e in dkms:
            vals = ", ".join("%g" % v for v in e["values"])
            print("%-6s %-16s %-16s %12s %s%s" % (
                e["arch"], e["kernel"], e["what"], "%.15g" % e["median"], e["unit"],
                "  (%s)" % vals if len(e["values"]) > 1 else ""))


main()
