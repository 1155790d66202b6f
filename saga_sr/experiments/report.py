"""The ladder report: one loss plot, one metrics table, and the ladder's questions answered from the numbers.

Every number comes from the per-run files (train/metrics.csv, eval/per_clip.csv, trained.json), so the
report can be checked against them; ladder_metrics.csv holds the same numbers at full precision.

The seeds' four questions (Q1 deepening A0 -> A1, Q2 widening A1 -> B1, Q3 text and roll-off F0 / F1 / F2,
Q4 LFR on vs off) are answered once, in one table from the per-clip scores: the difference of means with a
95 % percentile bootstrap interval that resamples clips (the same clips for both sides: paired) and, per side,
seeds, so both the test-set and the seed-to-seed noise are in it; "helps" / "hurts" only when the interval
excludes 0 and each rung has at least two seeds (Q4 compares the same samples with and without LFR, so its
seeds are paired too). The first rung that is "enough" is judged with the same intervals; only the
memorisation rule (train / val loss) uses another statistic.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from saga_sr.evaluation.stats import mean_ci, std
from saga_sr.evaluation.tables import markdown_table, write_csv
from saga_sr.outputs import write_text_atomic
from saga_sr.training.metrics_csv import read_metrics
from saga_sr.training.plots import loss_curves

TRAIN_LOSS_KEYS = ("train/loss", "train/loss_step", "train_loss", "loss")
VAL_LOSS_KEYS = ("val/loss", "val/loss_epoch", "val_loss")
EVAL_METRICS = ("lsd", "lsd_hf", "lsd_lf", "si_sdr")
NOT_ENOUGH = "**not enough evidence**"
FLAGS = ("compute_rolloff", "disable_caption", "disable_val_lowfreq_replace")


def _run_dir(out: Path, rec: dict) -> Path:
    return out / "runs" / rec["rung"] / f"seed{rec['seed']}"


# ---- reading the per-run files ----------------------------------------------------------------------------
def read_curves(path: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """{"train": (steps, losses), "val": (steps, losses)} from a run's metrics.csv (finite values only)."""
    metrics = read_metrics(path)

    def first(keys: Sequence[str]) -> tuple[list[int], list[float]]:
        return next((metrics[k] for k in keys if k in metrics), ([], []))

    return {"train": first(TRAIN_LOSS_KEYS), "val": first(VAL_LOSS_KEYS)}


def read_per_clip(path: str | Path) -> list[dict]:
    """An evaluation's per_clip.csv with metric columns as floats ([] if missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            for key in (*EVAL_METRICS, "cutoff_hz", "visqol", "mel_dist"):
                if key in r:
                    r[key] = float(r[key]) if r[key] not in ("", "nan") else float("nan")
            out.append(r)
    return out


def clip_values(per_clip: Sequence[dict], system: str, metric: str, cutoff: float | None = None) -> dict[tuple, float]:
    """(file, cutoff) -> value for one system and metric."""
    return {
        (r["file"], r["cutoff_hz"]): r[metric]
        for r in per_clip
        if r["system"] == system and metric in r and (cutoff is None or r["cutoff_hz"] == cutoff)
    }


def loss_facts(curves: dict) -> dict:
    """Start / end train loss (means of the first 10 % / last 20 % of logged steps), plateau, last val loss."""
    steps, train = curves["train"]
    facts: dict = {}
    if len(train) >= 2:
        n = len(train)
        head = train[: max(1, n // 10)]
        tail = train[n - max(1, n // 5) :]
        before = train[max(0, n - 2 * max(1, n // 5)) : n - max(1, n // 5)] or head
        facts.update(
            train_start=sum(head) / len(head),
            train_end=sum(tail) / len(tail),
            train_before_end=sum(before) / len(before),
            train_end_sd=std(tail) if len(tail) > 1 else float("nan"),
        )
        # fewer than 10 logged losses cannot show a plateau: None = "cannot tell"
        facts["plateau"] = (
            abs(facts["train_end"] - facts["train_before_end"]) <= 0.05 * abs(facts["train_before_end"])
            if n >= 10
            else None
        )
    vsteps, val = curves["val"]
    if val:
        facts["val_end"] = val[-1]
        if "train_end" in facts:
            facts["val_gap"] = val[-1] - facts["train_end"]
    return facts


# ---- collecting --------------------------------------------------------------------------------------------
def collect(out: Path, records: Sequence[dict], cutoffs: Sequence[float]) -> list[dict]:
    """One flat row per run (rung x seed): the table numbers, recomputed from the run's files."""
    rows = []
    for rec in records:
        row = {
            "rung": rec["rung"],
            "seed": rec["seed"],
            "status": rec.get("status"),
            "problems": " | ".join(rec.get("problems") or []),
            "params_total": rec.get("params_total"),
            "params_dit": rec.get("params_dit"),
            "bench_step_s": rec.get("bench_step_s"),
            "step_time_s": rec.get("step_time_s"),
            "steps_reached": rec.get("steps_reached"),
            "threads": rec.get("threads"),
            "peak_memory_mb": (rec.get("trained") or {}).get("peak_memory_mb"),
            **{f: rec.get("flags", {}).get(f) for f in FLAGS},
            "last_val/lsd": rec.get("last_val/lsd"),
            "last_val/si_sdr": rec.get("last_val/si_sdr"),
        }
        if rec.get("status") == "done":
            run_dir = out / "runs" / rec["rung"] / f"seed{rec['seed']}"
            row.update(loss_facts(read_curves(run_dir / "train" / "metrics.csv")))
            per_clip = read_per_clip(out / rec["eval_dir"] / "per_clip.csv")
            for cutoff in cutoffs:
                for system in ("ours", "ours_no_lfr"):
                    for metric in EVAL_METRICS:
                        vals = list(clip_values(per_clip, system, metric, cutoff).values())
                        row[f"{system}_{metric}_{int(cutoff)}"] = mean_ci(vals).mean if vals else None
        rows.append(row)
    return rows


# ---- formatting --------------------------------------------------------------------------------------------
def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int) and abs(x) >= 10_000:
        return f"{x / 1e6:.2f} M"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


# ---- the report --------------------------------------------------------------------------------------------
def _aggregate(rows: Sequence[dict], rung: str, key: str) -> str:
    vals = [
        r.get(key)
        for r in rows
        if r["rung"] == rung and isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
    ]
    if not vals:
        return "n/a"
    if len(set(vals)) == 1:
        return _fmt(vals[0])
    s = mean_ci(vals)
    return f"{_fmt(s.mean)} (sd {std(vals):.3f})"


def write_report(out: Path, records: Sequence[dict], settings) -> Path:
    """ladder_report.md + ladder_metrics.csv + loss_curves.png from the finished records."""
    out = Path(out)
    cutoffs = list(settings.eval_cutoffs)
    rows = collect(out, records, cutoffs)
    write_csv(out / "ladder_metrics.csv", rows)
    curves = {
        f"{r['rung']} s{r['seed']}": read_curves(_run_dir(out, r) / "train" / "metrics.csv")
        for r in records
        if r.get("status") == "done"
    }
    png = loss_curves(curves, out / "loss_curves.png", title="ladder: train (solid) and val (dashed) loss")
    rungs = list(dict.fromkeys(r["rung"] for r in rows))
    done = [g for g in rungs if any(r["rung"] == g and r.get("status") == "done" for r in rows)]
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# Capacity ladder report\n",
        f"Rungs {', '.join(rungs)}; seeds {', '.join(map(str, seeds))}; per run {_budget(settings)}; batch "
        f"{settings.batch_size}, scale {settings.scale}; train {settings.train_dir}, val {settings.val_dir}. "
        f"Evaluation: LR at {', '.join(str(int(c)) for c in cutoffs)} Hz (cheby1 order 8, same clips for every "
        f"run), {settings.eval_steps} sampling steps. Loss curves: `{png.name}`; every number below is in "
        f"`ladder_metrics.csv` and the per-run files under `runs/`.\n",
    ]
    if len(seeds) < 2:
        lines.append(
            "**One seed only**: seed-to-seed noise is unmeasured, so no rung difference can be called "
            "(run with `--seeds 0,1,2`).\n"
        )
    lines += _table(rows, rungs, cutoffs)
    lines += questions_section(out, rows, done, cutoffs)
    invalid = [r for r in rows if r.get("status") == "invalid"]
    if invalid:
        lines.append("\n## Rungs refused by the dimension checks\n")
        lines += [f"- {r['rung']}: {r['problems']}" for r in {r["rung"]: r for r in invalid}.values()]
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        lines.append("\n## Runs that failed while training (rerun the command to retry them)\n")
        lines += [f"- {r['rung']} seed {r['seed']}: {r['problems']}" for r in failed]
    lines.append("\n## The seeds' questions\n")
    lines += _memorisation(rows, done)
    lines += _enough(out, rows, done, cutoffs)
    lines += _answered_above(done, settings.scale)
    path = out / "ladder_report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _table(rows: Sequence[dict], rungs: Sequence[str], cutoffs: Sequence[float]) -> list[str]:
    cols = [
        ("params (total)", "params_total"),
        ("params (DiT)", "params_dit"),
        ("steps reached", "steps_reached"),
        ("threads", "threads"),
        ("s/step bench", "bench_step_s"),
        ("s/step wall", "step_time_s"),
        ("peak MB", "peak_memory_mb"),
        ("train loss end", "train_end"),
        ("val loss end", "val_end"),
        ("val − train", "val_gap"),
        ("val/lsd", "last_val/lsd"),
        ("val/si_sdr", "last_val/si_sdr"),
    ]
    cols += [(f"LSD {int(c)}", f"ours_lsd_{int(c)}") for c in cutoffs]
    cols += [(f"SI-SDR {int(c)}", f"ours_si_sdr_{int(c)}") for c in cutoffs]
    cells = []
    for g in rungs:
        mine = [r for r in rows if r["rung"] == g]
        flags = ", ".join(f for f in FLAGS if mine[0].get(f)) or "-"
        status = "/".join(sorted({str(r.get("status")) for r in mine}))
        cells.append(
            [g, status, flags, *(_per_seed(rows, g, k) if k in PER_SEED else _aggregate(rows, g, k) for _, k in cols)]
        )
    out = [
        "## Metrics (mean over seeds; sd when several)\n",
        *markdown_table(["rung", "status", "flags", *(c[0] for c in cols)], cells),
    ]
    out.append(
        "\nsteps reached: per seed, the step of the run's final checkpoint (equal time budgets give unequal "
        "steps). "
        "LSD / SI-SDR: this model with LFR on the evaluation clips; val/* : the last values training logged. "
        "s/step bench: median of timed synthetic training steps (encode, conditioning, DiT forward + backward, "
        "AdamW) on the evaluation device; s/step wall: the training call's wall time / its steps (includes "
        "setup and validation, and any load from other processes); peak MB: the training call's peak "
        "resident memory (CPU) or CUDA allocator peak."
    )
    return out


PER_SEED = ("steps_reached", "threads")  # shown seed by seed: equal time gives unequal steps


def _per_seed(rows: Sequence[dict], rung: str, key: str) -> str:
    vals = [str(r[key]) for r in rows if r["rung"] == rung and r.get(key) is not None]
    return " / ".join(vals) if vals else "n/a"


def budget_text(settings) -> str:
    """The per-run budget in words: wall time and / or steps (the ladder's log and errors say it the same way)."""
    minutes, steps = getattr(settings, "minutes", None), settings.max_steps
    parts = [f"{minutes:g} min of training wall time"] if minutes else []
    if steps:
        parts.append(f"{steps} steps" + (" at most" if parts else ""))
    return ", ".join(parts)


def _budget(settings) -> str:
    """The budget with the torch threads the runs had, for the report's header."""
    threads = getattr(settings, "threads", None)
    return budget_text(settings) + (f", {threads} torch thread(s)" if threads else "")


def _memorisation(rows: Sequence[dict], done: Sequence[str]) -> list[str]:
    out = [
        "### Does each rung memorise the small set?\n",
        "Rule: it memorises when its train loss has plateaued (last fifth within 5 % of the fifth before) "
        "at no more than half its starting value, and its val loss sits above the train loss.\n",
    ]
    for g in done:
        for r in (r for r in rows if r["rung"] == g and r.get("status") == "done"):
            if "train_end" not in r:
                out.append(f"- {g} seed {r['seed']}: no train loss logged.")
                continue
            ratio = r["train_end"] / r["train_start"] if r["train_start"] else float("nan")
            plateau = r["plateau"]
            gap = r.get("val_gap")
            if plateau is None or gap is None:
                verdict = f"{NOT_ENOUGH} (fewer than 10 logged train losses or no val loss)"
            else:
                verdict = "memorises" if plateau and ratio <= 0.5 and gap > 0 else "does not memorise yet"
            noise = r.get("train_end_sd", float("nan"))
            out.append(
                f"- {g} seed {r['seed']}: train loss {r['train_start']:.4f} -> {r['train_end']:.4f} "
                f"(×{ratio:.2f}; sd within the last fifth {_fmt(noise, 4)}), plateau {_fmt(plateau)} "
                f"(fifth before: {r['train_before_end']:.4f}); val loss {_fmt(r.get('val_end'), 4)}, gap "
                f"{_fmt(gap, 4)} -> {verdict}."
            )
    return out


def _enough(out: Path, rows: Sequence[dict], done: Sequence[str], cutoffs: Sequence[float]) -> list[str]:
    """The first capacity rung not reliably worse than the best, judged with the Answers table's bootstrap."""
    lines = [
        '\n### The first rung that is "enough"\n',
        "Rule: in the order given, the first rung whose LSD is not reliably worse than the best rung's (lowest "
        "mean LSD) at every cutoff. Reliably worse is the Answers table's **hurts**: the clip x seed bootstrap "
        "interval of Δ (rung − best) excludes 0, with at least two seeds per rung.\n",
    ]
    capacity = [g for g in done if not g.startswith("F")] or list(done)
    if len(capacity) < 2:
        return lines + [f"- only {capacity or 'no rung'} finished: nothing to compare."]
    against: dict[str, list[tuple[float, str, Interval | None, str]]] = {g: [] for g in capacity}
    for c in cutoffs:
        scores = {g: seed_clip_scores(out, rows, g, "ours", "lsd", c) for g in capacity}
        best = min(capacity, key=lambda h: _mean(rows, h, f"ours_lsd_{int(c)}"))
        for g in capacity:
            iv = None if g == best else bootstrap_difference(scores[best], scores[g])
            against[g].append((c, best, iv, BEST if g == best else verdict(iv, lower_is_better=True)))
    answer = next((g for g in capacity if all(v != HURTS for *_, v in against[g])), None)
    lines += [_enough_line(g, against[g], g == answer) for g in capacity]
    lines.append(
        f"- Answer: **{answer}** (the remaining differences are inside the noise)"
        if answer
        else "- Answer: none of the rungs (each is reliably worse than the best at some cutoff)."
    )
    return lines


def _enough_line(rung: str, against: Sequence[tuple[float, str, Interval | None, str]], enough: bool) -> str:
    """One rung's comparison with the best rung at each cutoff, and what that makes it."""
    parts = []
    for c, best, iv, answer in against:
        if answer == BEST:
            parts.append(f"the best at {int(c)} Hz")
        elif iv is None:
            parts.append(f"vs {best} at {int(c)} Hz: {answer}")
        else:
            called = {HURTS: "**reliably worse**", HELPS: "better"}.get(answer, answer)
            parts.append(
                f"vs {best} at {int(c)} Hz Δ {iv.mean:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}] "
                f"({iv.clips} clips × {iv.seeds_a}/{iv.seeds_b} seeds): {called}"
            )
    worse = any(a == HURTS for *_, a in against)
    tail = "not enough" if worse else ("**enough**" if enough else "not reliably worse, but an earlier rung is enough")
    return f"- {rung}: " + "; ".join(parts) + f" → {tail}."


def _answered_above(done: Sequence[str], scale: str) -> list[str]:
    """Text, roll-off and LFR are answered once, by the Answers table: point there."""
    note = ""
    if any(what == "+ text" and a in done and b in done for _q, what, a, b in QUESTIONS + CAPACITY_MATCHED):
        note = (
            " Prompts come from caption / transcript sidecars (NAME.caption.txt, NAME.txt); clips without them get "
            "an empty prompt"
            + (
                ", and at --scale tiny the T5 is a random tiny one, so the text rows measure the cross-attention "
                "path, not language"
                if scale == "tiny"
                else ""
            )
            + "."
        )
    return [
        "\n### Text, roll-off and low-frequency replacement\n",
        'Answered once, in the table "Answers: Q1 deepen, Q2 widen, Q3 text / roll-off, Q4 LFR" above: its Q3 rows '
        "compare text (F0 → F1) and roll-off (F1 → F2), its Q4 rows each rung with LFR off and on." + note,
    ]


def _mean(rows: Sequence[dict], rung: str, key: str) -> float:
    vals = [r[key] for r in rows if r["rung"] == rung and isinstance(r.get(key), float)]
    return sum(vals) / len(vals) if vals else float("inf")


# ---- the four questions, with clip x seed bootstrap intervals ----------------------------------------------
QUESTIONS = (
    ("Q1", "deeper", "A0", "A1"),
    ("Q2", "wider", "A1", "B1"),
    ("Q3", "+ text", "F0", "F1"),
    ("Q3", "+ roll-off", "F1", "F2"),
    ("Q3", "+ text + roll-off", "F0", "F2"),
)
# Q3 again at the capacity that trains in the budget, answered only when these config rungs ran: A0 is "F1 at A0
# size" (text, no roll-off); F0_at_A0.json drops its text, F2_at_A0.json (= mini.json) adds mini's roll-off
CAPACITY_MATCHED = (
    ("Q3 (A0 size)", "+ text", "F0_at_A0", "A0"),
    ("Q3 (A0 size)", "+ roll-off", "A0", "F2_at_A0"),
)
HELPS, HURTS = "helps", "hurts"
BEST = "best"  # the rung the first-enough rule compares the others with
N_BOOT = 2000


@dataclass(frozen=True)
class Interval:
    """Difference of means b - a (over clips, each clip's score averaged over seeds) and its 95 % interval."""

    mean: float
    low: float
    high: float
    clips: int
    seeds_a: int
    seeds_b: int
    mean_a: float
    mean_b: float


def seed_clip_scores(
    out: Path, rows: Sequence[dict], rung: str, system: str, metric: str, cutoff: float
) -> dict[int, dict[str, float]]:
    """seed -> file -> finite score of `system` in one rung's finished runs at one cutoff."""
    scores: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["rung"] != rung or r.get("status") != "done":
            continue
        per_clip = read_per_clip(_run_dir(out, r) / "eval" / "per_clip.csv")
        vals = {f: v for (f, _c), v in clip_values(per_clip, system, metric, cutoff).items() if math.isfinite(v)}
        if vals:
            scores[r["seed"]] = vals
    return scores


def bootstrap_difference(
    a: dict[int, dict[str, float]],
    b: dict[int, dict[str, float]],
    *,
    paired_seeds: bool = False,
    n_boot: int = N_BOOT,
    rng: int = 0,
) -> Interval | None:
    """b - a over the clips both have in every seed: percentile bootstrap resampling clips (paired) and seeds
    (each side its own, or the same seeds for both when `paired_seeds`); None when nothing is shared."""
    seeds_a, seeds_b = sorted(a), sorted(b)
    if paired_seeds:
        seeds_a = seeds_b = sorted(set(a) & set(b))
    if not seeds_a or not seeds_b:
        return None
    clips = sorted(set.intersection(*(set(a[s]) for s in seeds_a), *(set(b[s]) for s in seeds_b)))
    if not clips:
        return None
    av = np.array([[a[s][c] for c in clips] for s in seeds_a])
    bv = np.array([[b[s][c] for c in clips] for s in seeds_b])
    gen = np.random.default_rng(rng)
    pick = gen.integers(0, len(clips), (n_boot, len(clips)))
    if paired_seeds:
        per_clip = (bv - av)[gen.integers(0, len(seeds_a), (n_boot, len(seeds_a)))].mean(axis=1)
    else:
        sb = gen.integers(0, len(seeds_b), (n_boot, len(seeds_b)))
        sa = gen.integers(0, len(seeds_a), (n_boot, len(seeds_a)))
        per_clip = bv[sb].mean(axis=1) - av[sa].mean(axis=1)
    stats = np.take_along_axis(per_clip, pick, axis=1).mean(axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    return Interval(
        float((bv.mean(axis=0) - av.mean(axis=0)).mean()),
        float(low),
        float(high),
        len(clips),
        len(seeds_a),
        len(seeds_b),
        float(av.mean()),
        float(bv.mean()),
    )


def verdict(iv: Interval | None, lower_is_better: bool, min_seeds: int = 2) -> str:
    """helps / hurts (b against a) when the interval excludes 0 with enough seeds and clips, else why not."""
    if iv is None:
        return "no finished runs of both"
    if min(iv.seeds_a, iv.seeds_b) < min_seeds:
        return f"not enough evidence (fewer than {min_seeds} seeds)"
    if iv.clips < 2:
        return "not enough evidence (one clip)"
    if iv.low <= 0 <= iv.high:
        return "not enough evidence (interval includes 0)"
    return HELPS if (iv.high < 0) == lower_is_better else HURTS


def perceptual_metric(out: Path, rows: Sequence[dict]) -> tuple[str, bool] | None:
    """(column, lower_is_better) of the perceptual score the evaluations wrote (ViSQOL or log-mel), if any."""
    for r in rows:
        if r.get("status") != "done":
            continue
        per_clip = read_per_clip(_run_dir(out, r) / "eval" / "per_clip.csv")
        for name, lower in (("visqol", False), ("mel_dist", True)):
            if any(isinstance(p.get(name), float) and math.isfinite(p[name]) for p in per_clip):
                return name, lower
    return None


def _question_row(q: str, what: str, metric: str, cutoff: float, iv: Interval | None, answer: str) -> list[str]:
    if iv is None:
        return [q, what, metric, str(int(cutoff)), "n/a", "n/a", "n/a", "n/a", "0", answer]
    return [
        q,
        what,
        metric,
        str(int(cutoff)),
        f"{iv.mean_a:.3f}",
        f"{iv.mean_b:.3f}",
        f"{iv.mean:+.3f}",
        f"[{iv.low:+.3f}, {iv.high:+.3f}]",
        f"{iv.clips} × {iv.seeds_a}/{iv.seeds_b}",
        f"**{answer}**" if answer in (HELPS, HURTS) else answer,
    ]


def questions_section(out: Path, rows: Sequence[dict], done: Sequence[str], cutoffs: Sequence[float]) -> list[str]:
    """The Q1-Q4 table: B against A with LFR (the system users get), and each rung's LFR on against off."""
    metrics = [("lsd", True)] + [m for m in [perceptual_metric(out, rows)] if m]
    cells = []
    matched = tuple(q for q in CAPACITY_MATCHED if q[2] in done and q[3] in done)
    for q, what, a, b in QUESTIONS + matched:
        for metric, lower in metrics:
            for c in cutoffs:
                iv = bootstrap_difference(*(seed_clip_scores(out, rows, g, "ours", metric, c) for g in (a, b)))
                cells.append(_question_row(q, f"{a} → {b} ({what})", metric, c, iv, verdict(iv, lower)))
    for g in done:
        for metric, lower in metrics:
            for c in cutoffs:
                a, b = (seed_clip_scores(out, rows, g, system, metric, c) for system in ("ours_no_lfr", "ours"))
                iv = bootstrap_difference(a, b, paired_seeds=True)
                cells.append(_question_row("Q4", f"{g}: LFR off → on", metric, c, iv, verdict(iv, lower, 1)))
    header = ["Q", "A → B", "metric", "cutoff Hz", "A", "B", "Δ (B − A)", "95 % interval", "clips × seeds A/B"]
    return [
        "\n## Answers: Q1 deepen, Q2 widen, Q3 text / roll-off, Q4 LFR\n",
        f"Δ = mean of B − mean of A over the clips both were scored on (each clip averaged over its seeds); "
        f"95 % interval: percentile bootstrap ({N_BOOT} resamples) of clips, paired, and of each side's seeds. "
        "Lower is better for lsd and mel_dist, higher for visqol. **helps** / **hurts**: B is better / worse "
        "with the interval excluding 0 and at least two seeds per rung; otherwise not enough evidence. Q1-Q3 "
        "score the model with LFR; Q4 scores the same samples without (A) and with (B) LFR, seeds paired.\n",
        *markdown_table([*header, "verdict"], cells),
    ]
