"""Result tables: Markdown tables and CSV files, each written atomically (saga_sr.outputs), so a reader never
sees a half-written file. `evaluate` writes its per-domain tables, results.md and CSVs here; the ladder report
builds its metrics table and CSV with the same functions.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from saga_sr.evaluation.stats import Summary
from saga_sr.inference.targets import NOT_USED
from saga_sr.outputs import atomic_path, write_text_atomic

SYSTEM_LABELS = {
    "unprocessed": "Unprocessed (LR input)",
    "ours": "SAGA-SR (this model, with LFR)",
    "ours_no_lfr": "SAGA-SR without LFR",
    "vae_lfr": "Pretransform round trip + LFR (paper's VAE row)",
    "dsp_bwe": "DSP bandwidth extension (no learning)",
}
LOWER_IS_BETTER = {
    "lsd": True,
    "lsd_ssr": True,
    "lsd_hf": True,
    "lsd_lf": True,
    "si_sdr": False,
    "mel_dist": True,
    "visqol": False,
}


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: the header, its separator, one line per row of cells."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cells) + " |" for cells in rows
    ]


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """Rows of dicts as CSV; the columns are every key in first-seen order (missing cells empty)."""
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_tables(
    out: Path,
    summary: Sequence[dict],
    metric_names: Sequence[str],
    perceptual_label: str,
    notes: Sequence[str],
    described: Mapping[str, str] | None = None,
) -> list[Path]:
    """tables/<domain>_<cutoff>hz.md for every group, and results.md holding them all with the notes.

    Each table has a "target roll-off" column: the setting a model row used (described by `described`, setting
    name -> text), "n/a" for the baselines."""
    described = described or {}
    index: dict[tuple, dict[tuple, dict[str, Summary]]] = {}
    for s in summary:
        system = (s["system"], s.get("target_setting", NOT_USED))
        index.setdefault((s["domain"], s["cutoff_hz"]), {}).setdefault(system, {})[s["metric"]] = Summary(
            s["mean"], s["ci95"], s["n"]
        )
    arrows = {m: ("↓" if LOWER_IS_BETTER.get(m, True) else "↑") for m in metric_names}
    paths, blocks = [], []
    for (domain, cutoff), systems in index.items():
        n = max((v.n for d in systems.values() for v in d.values()), default=0)
        head = f"### {domain}, cutoff {int(cutoff)} Hz (n = {n} clips; mean ± 95 % t-interval)\n\n"
        lines = markdown_table(
            ["system", "target roll-off", *(f"{m} {arrows[m]}" for m in metric_names)],
            (
                [
                    SYSTEM_LABELS.get(system, system),
                    described.get(setting, setting),
                    *(values[m].format(2) if m in values else "n/a" for m in metric_names),
                ]
                for (system, setting), values in systems.items()
            ),
        )
        block = head + "\n".join(lines) + "\n"
        path = out / "tables" / f"{domain.replace('/', '_')}_{int(cutoff)}hz.md"
        write_text_atomic(path, block)
        paths.append(path)
        blocks.append(block)
    legend = (
        "Metrics: lsd (NU-Wave 2 style, 2048/512 STFT), lsd_ssr (ssr_eval/AudioSR style), lsd_hf / lsd_lf "
        "(lsd above / below the LR cutoff), si_sdr (dB), and " + perceptual_label + "."
    )
    text = "# Evaluation results\n\n" + legend + "\n\n" + "".join(f"- {n}\n" for n in notes) + "\n" + "\n".join(blocks)
    write_text_atomic(out / "results.md", text)
    return paths
