"""Does the package's chunk-wise envelope step (model.diffusion.envelope_follow) reproduce the offline one?
Applies visqol_diagnosis.top_octave_envelope(alpha=0.5) to the whole-clip output of an `evaluate` run with the
step off, and compares it and a run with the step at 0.5 (same clips, cutoffs and seed) with the off run:
paired LSD and ViSQOL differences per cutoff over all clips.

    python bench/envelope_offline_check.py EVAL_OFF EVAL_ON
"""

import sys
from pathlib import Path

# bench/ is on sys.path when this runs as a script
from visqol_diagnosis import Visqol, top_octave_envelope

from saga_sr.audio.io import load_audio
from saga_sr.audio.metrics import lsd
from saga_sr.evaluation.stats import paired_difference

base, pkg = Path(sys.argv[1]), Path(sys.argv[2])
vq = Visqol()
rows = {}
for ref in sorted((base / "audio").rglob("reference.wav")):
    d = ref.parent
    cut = float(d.relative_to(base / "audio").parts[0][:-2])
    r = load_audio(ref)[0][0]
    ours = load_audio(d / "ours.target_default.wav")[0][0]
    lr = load_audio(d / "unprocessed.wav")[0][0]
    off = top_octave_envelope(ours, lr, cut, 0.5)
    inpkg = load_audio(pkg / d.relative_to(base) / "ours.target_default.wav")[0][0]
    out = {}
    for name, x in (("ours0", ours), ("offline", off), ("inpkg", inpkg)):
        s = vq.score(r, x)
        out[name] = (lsd(r[None], x[None], 44100), float(s.moslqo) if s is not None else float("nan"))
    rows.setdefault(cut, []).append(out)
    print(cut, d.name, {k: tuple(round(v, 3) for v in vals) for k, vals in out.items()}, flush=True)
for cut, rs in sorted(rows.items()):
    for m, i in (("lsd", 0), ("visqol", 1)):
        for name in ("offline", "inpkg"):
            dd = paired_difference([r[name][i] for r in rs], [r["ours0"][i] for r in rs])
            print(f"{cut:.0f} {m} {name} - ours0: {dd.mean:+.3f} ± {dd.half_width:.3f} (n={dd.n})")
        dd = paired_difference([r["inpkg"][i] for r in rs], [r["offline"][i] for r in rs])
        print(f"{cut:.0f} {m} inpkg - offline: {dd.mean:+.3f} ± {dd.half_width:.3f}")
