"""Paired comparison of two `saga-sr evaluate` runs of the same clips, cutoffs and seed (e.g. one model config
against another): per cutoff and domain, each run's mean LSD and ViSQOL of a system and the paired difference
B - A with its 95 % t-interval over clips (saga_sr.evaluation.stats). Baselines scored by both runs agree, so
any system row can be compared.

    python bench/paired_eval.py RUN_A/per_clip.csv RUN_B/per_clip.csv [--system ours] [--baselines]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

from saga_sr.evaluation.stats import mean_ci, paired_difference

METRICS = ("lsd", "visqol")


def read_rows(path: str, system: str) -> dict[tuple[float, str, str], dict]:
    """(cutoff, domain, file) -> the row of `system` in one run's per_clip.csv."""
    with open(path, newline="") as f:
        return {(float(r["cutoff_hz"]), r["domain"], r["file"]): r for r in csv.DictReader(f) if r["system"] == system}


def _num(row: dict, metric: str) -> float:
    try:
        return float(row.get(metric) or "nan")
    except ValueError:
        return float("nan")


def table(a: dict, b: dict, label_a: str, label_b: str) -> list[str]:
    """Markdown rows: cutoff, domain, n, A and B means, and B - A per metric."""
    keys = sorted(set(a) & set(b))
    groups: dict[tuple[float, str], list] = defaultdict(list)
    for key in keys:
        groups[(key[0], "all")].append(key)
        groups[(key[0], key[1])].append(key)
    head = (
        ["cutoff", "domain", "n"]
        + [f"{m} {lab}" for m in METRICS for lab in (label_a, label_b)]
        + [f"{m} {label_b} - {label_a}" for m in METRICS]
    )
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (cut, dom), ks in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] != "all", g[0][1])):
        cells = [f"{cut:.0f}", dom, str(len(ks))]
        for m in METRICS:
            for run in (a, b):
                s = mean_ci(_num(run[k], m) for k in ks)
                cells.append(f"{s.mean:.2f} ± {s.half_width:.2f}")
        for m in METRICS:
            d = paired_difference([_num(b[k], m) for k in ks], [_num(a[k], m) for k in ks])
            cells.append(f"{d.mean:+.3f} ± {d.half_width:.3f}")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--system", default="ours")
    p.add_argument("--labels", nargs=2, default=("A", "B"))
    p.add_argument("--baselines", action="store_true", help="also compare B with run A's dsp_bwe and unprocessed rows")
    args = p.parse_args()
    print("\n".join(table(read_rows(args.run_a, args.system), read_rows(args.run_b, args.system), *args.labels)))
    if args.baselines:
        for base in ("dsp_bwe", "unprocessed"):
            print(f"\n{base} vs {args.labels[1]} ({args.system}):")
            print(
                "\n".join(table(read_rows(args.run_a, base), read_rows(args.run_b, args.system), base, args.labels[1]))
            )


if __name__ == "__main__":
    main()
