"""Why saga-sr-mini beats the DSP fill on LSD but loses on ViSQOL: per-band ViSQOL, level bias, envelope
correlation and counterfactual re-scoring, from the WAVs `saga-sr evaluate` wrote (docs/model_card_mini/
visqol_diagnosis.md gives the numbers and the conclusions).

Per clip and cutoff it reads reference / unprocessed / dsp_bwe / ours / ours_no_lfr, builds the counterfactual
signals (the model's band above the cutoff with the DSP fill's or the reference's band level and envelope) and
scores each with LSD and ViSQOL (audio mode, as saga_sr.evaluation.perceptual, keeping the per-band `fvnsim`).
Level bias and envelope correlation are read in ViSQOL's own representation: its 32-band gammatone
spectrogram (80 ms windows, 20 ms hop) at 48 kHz, for the bands whose centre lies above the cutoff.

    python bench/visqol_diagnosis.py EVAL_DIR OUT_DIR [--extra NAME=EVAL_DIR ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import numpy as np

from saga_sr.audio.io import load_audio
from saga_sr.audio.metrics import lsd
from saga_sr.audio.resample import resample
from saga_sr.audio.spectral import N_FFT, istft, stft
from saga_sr.evaluation.stats import mean_ci, paired_difference

SR, VQ_SR = 44100, 48000
BASE = {
    "unprocessed": "unprocessed.wav",
    "dsp": "dsp_bwe.wav",
    "ours": "ours.target_default.wav",
    "ours_no_lfr": "ours_no_lfr.target_default.wav",
}


# ---- ViSQOL with its per-band view ---------------------------------------------------------------------------
class Visqol:
    """ViSQOL audio mode as `saga-sr evaluate` runs it (48 kHz mono), returning the whole similarity result."""

    def __init__(self) -> None:
        from visqol import VisqolApi
        from visqol.analysis_window import AnalysisWindow
        from visqol.gammatone import GammatoneSpectrogramBuilder

        logging.getLogger("visqol").setLevel(logging.ERROR)
        self.api = VisqolApi()
        self.api.create(mode="audio")
        self.builder = GammatoneSpectrogramBuilder(32, 50.0)
        self.window = AnalysisWindow(VQ_SR, 0.25, 0.08)

    def score(self, ref: np.ndarray, est: np.ndarray):
        try:
            return self.api.measure_from_arrays(resample(ref, SR, VQ_SR), resample(est, SR, VQ_SR), VQ_SR)
        except ValueError as exc:
            if "patch size" in str(exc):
                return None
            raise

    def mos_of(self, fvnsim: np.ndarray) -> float:
        """The MOS the SVR gives a per-band similarity vector (the audio model reads fvnsim only)."""
        q = self.api._manager.quality_mapper.predict_quality(np.asarray(fvnsim, dtype=np.float64))
        return q if float(np.mean(fvnsim)) >= 0.15 else 1.0

    def gammatone_db(self, ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw dB ref, raw dB est, ref and est as NSIM compares them, band centres): est scaled to ref's SPL,
        then ViSQOL's floors (absolute -45 dB, 45 dB below each frame's peak) for the compared pair."""
        from visqol.audio_utils import AudioSignal, scale_to_match_sound_pressure_level
        from visqol.gammatone import prepare_spectrograms_for_comparison

        r = AudioSignal(resample(ref, SR, VQ_SR).astype(np.float64), VQ_SR)
        e = scale_to_match_sound_pressure_level(r, AudioSignal(resample(est, SR, VQ_SR).astype(np.float64), VQ_SR))
        sr_, se = self.builder.build(r, self.window), self.builder.build(e, self.window)
        raw_r = 10 * np.log10(np.abs(sr_.data) + 1e-12)
        raw_e = 10 * np.log10(np.abs(se.data) + 1e-12)
        pr, pe = prepare_spectrograms_for_comparison(sr_, se)
        return raw_r, raw_e, pr, pe, sr_.center_freq_bands


def band_stats(vq: Visqol, ref: np.ndarray, est: np.ndarray) -> dict:
    """Per gammatone band: level bias (dB, est - ref, frames where the reference band is within 60 dB of its
    loudest frame) and the Pearson correlation of the compared (floored) dB envelopes over time."""
    raw_r, raw_e, pr, pe, cf = vq.gammatone_db(ref, est)
    n = min(raw_r.shape[1], raw_e.shape[1])
    raw_r, raw_e, pr, pe = raw_r[:, :n], raw_e[:, :n], pr[:, :n], pe[:, :n]
    bias, corr = [], []
    for b in range(raw_r.shape[0]):
        active = raw_r[b] > raw_r[b].max() - 60.0
        bias.append(float(np.mean(raw_e[b, active] - raw_r[b, active])))
        a, c = pr[b] - pr[b].mean(), pe[b] - pe[b].mean()
        den = float(np.sqrt((a * a).sum() * (c * c).sum()))
        corr.append(float((a * c).sum() / den) if den > 1e-9 else float("nan"))
    return {"bias": bias, "corr": corr, "centres": [float(x) for x in cf]}


def stft_band_bias(ref: np.ndarray, est: np.ndarray, cutoff: float) -> dict:
    """Per third-octave band above the cutoff (STFT 2048 / 512, no filter-skirt leakage): the mean over frames of
    10 log10(est / ref) band power, over frames where the reference band is within 50 dB of its loudest frame;
    and the long-term energy ratio in dB."""
    r, e = stft(ref.astype(np.float64)), stft(est.astype(np.float64))
    bias, energy, lows = [], [], []
    for lo, hi in fractional_bands(cutoff, 3):
        pr = 10 * np.log10((np.abs(r[lo:hi]) ** 2).sum(axis=0) + 1e-20)
        pe = 10 * np.log10((np.abs(e[lo:hi]) ** 2).sum(axis=0) + 1e-20)
        active = pr > pr.max() - 50.0
        bias.append(float(np.mean(pe[active] - pr[active])))
        energy.append(float(10 * np.log10(np.sum(10 ** (pe / 10)) / np.sum(10 ** (pr / 10)))))
        lows.append(lo * SR / N_FFT)
    return {"stft_bias": bias, "stft_energy_ratio_db": energy, "stft_band_lo_hz": lows}


# ---- counterfactual high bands -------------------------------------------------------------------------------
def fractional_bands(cutoff: float, per_octave: int = 6, sr: int = SR) -> list[tuple[int, int]]:
    """STFT (2048) bin ranges of 1/`per_octave`-octave bands from the cutoff to Nyquist (1/6 octave is finer
    than ViSQOL's gammatone bands, about 1/5 octave above 4 kHz)."""
    edges = [cutoff]
    while edges[-1] * 2 ** (1 / per_octave) < sr / 2:
        edges.append(edges[-1] * 2 ** (1 / per_octave))
    edges.append(sr / 2 + 1)
    to_bin = lambda f: int(round(f * N_FFT / sr))  # noqa: E731
    return [(to_bin(a), min(to_bin(b), N_FFT // 2 + 1)) for a, b in zip(edges[:-1], edges[1:]) if to_bin(b) > to_bin(a)]


def reshape_band(est: np.ndarray, guide: np.ndarray, cutoff: float, mode: str) -> np.ndarray:
    """`est` with its band above `cutoff` given `guide`'s 1/6-octave band energies (fine structure kept).

    mode "level": one gain per band and clip (long-term level); "envelope": one gain per band and STFT frame
    (level and time envelope); "shape": per band and frame, the guide's envelope normalised to the estimate's
    own long-term band level (time envelope only)."""
    e, g = stft(est.astype(np.float64)), stft(guide.astype(np.float64))
    out = e.copy()
    for lo, hi in fractional_bands(cutoff):
        pe = (np.abs(e[lo:hi]) ** 2).sum(axis=0) + 1e-20
        pg = (np.abs(g[lo:hi]) ** 2).sum(axis=0) + 1e-20
        if mode == "level":
            gain = np.sqrt(pg.sum() / pe.sum())
        elif mode == "envelope":
            gain = np.sqrt(pg / pe)
        else:
            gain = np.sqrt(pg / pe * pe.sum() / pg.sum())
        out[lo:hi] = e[lo:hi] * gain
    return istft(out, est.shape[-1]).astype(np.float32)


def top_octave_envelope(est: np.ndarray, lr: np.ndarray, cutoff: float, alpha: float = 1.0) -> np.ndarray:
    """An inference-time candidate: the band above `cutoff` of `est` re-modulated so its energy over time follows
    the LR's top octave [c/2, 0.9 c) (what the DSP fill follows), keeping its own long-term level and spectral
    shape; `alpha` < 1 imposes the envelope partly (gain ** alpha)."""
    e, x = stft(est.astype(np.float64)), stft(lr.astype(np.float64))
    k = int(round(cutoff * N_FFT / SR))
    top = (np.abs(x[k // 2 : int(0.9 * k)]) ** 2).sum(axis=0) + 1e-20
    band = (np.abs(e[k:]) ** 2).sum(axis=0) + 1e-20
    gain = np.sqrt(top / band * band.sum() / top.sum()) ** alpha
    e[k:] *= gain
    return istft(e, est.shape[-1]).astype(np.float32)


def top_octave_envelope_per_band(est: np.ndarray, lr: np.ndarray, cutoff: float) -> np.ndarray:
    """As `top_octave_envelope`, per 1/6-octave band: every band's energy over time follows the LR's top octave
    at the band's own long-term level (the DSP fill's envelope without its noise, at the model's level)."""
    e, x = stft(est.astype(np.float64)), stft(lr.astype(np.float64))
    k = int(round(cutoff * N_FFT / SR))
    top = (np.abs(x[k // 2 : int(0.9 * k)]) ** 2).sum(axis=0) + 1e-20
    for lo, hi in fractional_bands(cutoff):
        band = (np.abs(e[lo:hi]) ** 2).sum(axis=0) + 1e-20
        e[lo:hi] *= np.sqrt(top / band * band.sum() / top.sum())
    return istft(e, est.shape[-1]).astype(np.float32)


def lfr_unscaled(pred: np.ndarray, lr: np.ndarray, cutoff: float) -> np.ndarray:
    """LFR as the evaluation applies it (same crossfade below the edge) but without its level match, which
    multiplies the whole prediction by r = LR / prediction at the seam bin, clamped to [0.8, 1.2]."""
    from saga_sr.audio.lfr import crossfade_weights, edge_crossfade_hz
    from saga_sr.audio.spectral import bin_of_hz

    p, x = stft(pred.astype(np.float64)), stft(lr.astype(np.float64))
    k = bin_of_hz(cutoff, SR)
    width = int(round(edge_crossfade_hz(cutoff) * N_FFT / SR))
    w = crossfade_weights(p.shape[0], k, width)[:k, None]
    p[:k] = p[:k] * (1.0 - w) + x[:k] * w
    return istft(p, pred.shape[-1]).astype(np.float32)


def candidates(sig: dict, cutoff: float) -> dict:
    ours, lr = sig["ours"], sig["unprocessed"]
    return {
        "cand:top_env": top_octave_envelope(ours, lr, cutoff, 1.0),
        "cand:top_env_0.5": top_octave_envelope(ours, lr, cutoff, 0.5),
        "cand:top_env_band": top_octave_envelope_per_band(ours, lr, cutoff),
        "cand:lfr_unscaled": lfr_unscaled(sig["ours_no_lfr"], lr, cutoff),
    }


def counterfactuals(sig: dict, cutoff: float) -> dict:
    ours, dsp, ref = sig["ours"], sig["dsp"], sig["reference"]
    return {
        "ours+dsp_level": reshape_band(ours, dsp, cutoff, "level"),
        "ours+ref_level": reshape_band(ours, ref, cutoff, "level"),
        "ours+dsp_shape": reshape_band(ours, dsp, cutoff, "shape"),
        "ours+ref_shape": reshape_band(ours, ref, cutoff, "shape"),
        "ours+dsp_envelope": reshape_band(ours, dsp, cutoff, "envelope"),
        "ours+ref_envelope": reshape_band(ours, ref, cutoff, "envelope"),
    }


# ---- driver --------------------------------------------------------------------------------------------------
def clip_dirs(eval_dir: Path) -> list[tuple[float, str, Path]]:
    """(cutoff, clip, folder) per cutoff, the domains interleaved so that a partial run covers all of them."""
    out = []
    for cut_dir in sorted((eval_dir / "audio").glob("*hz"), key=lambda d: int(d.name[:-2])):
        by_domain = [sorted(d.rglob("reference.wav")) for d in sorted(cut_dir.iterdir())]
        for i in range(max(map(len, by_domain), default=0)):
            for refs in by_domain:
                if i < len(refs):
                    ref = refs[i]
                    out.append((float(cut_dir.name[:-2]), ref.parent.relative_to(cut_dir).as_posix(), ref.parent))
    return out


def analyse(
    eval_dir: Path,
    out: Path,
    extra: dict[str, Path],
    with_cf: bool = True,
    only: tuple[str, ...] = (),
    systems: tuple[str, ...] = (),
) -> list[dict]:
    vq = Visqol()
    rows = []
    for cutoff, clip, d in clip_dirs(eval_dir):
        if only and not clip.startswith(only):
            continue
        sig = {"reference": load_audio(d / "reference.wav", target_sr=SR)[0][0]}
        for name, fname in BASE.items():
            sig[name] = load_audio(d / fname, target_sr=SR)[0][0]
        for name, other in extra.items():
            p = other / "audio" / f"{int(cutoff)}hz" / clip / BASE["ours"]
            sig[name] = load_audio(p, target_sr=SR)[0][0]
        if with_cf:
            sig.update(counterfactuals(sig, cutoff))
        sig.update(candidates(sig, cutoff))
        ref = sig["reference"]
        for name, est in sig.items():
            if name == "reference" or (systems and name not in systems):
                continue
            res = vq.score(ref, est)
            row = {
                "clip": clip,
                "domain": clip.split("/")[0],
                "cutoff": cutoff,
                "system": name,
                "lsd": lsd(ref[None], est[None], SR),
                "visqol": float(res.moslqo) if res is not None else float("nan"),
                "fvnsim": [float(x) for x in res.fvnsim] if res is not None else None,
            }
            if name in BASE or name in extra:
                row.update(band_stats(vq, ref, est))
                row.update(stft_band_bias(ref, est, cutoff))
            rows.append(row)
        print(f"{int(cutoff)} {clip}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.json").write_text(json.dumps(rows))  # after every clip: a partial run is usable
    return rows


def summary(rows: list[dict], base: str = "ours") -> list[dict]:
    """Per cutoff and system: LSD and ViSQOL means, and paired differences against `base` (95 % t-intervals)."""
    out = []
    for cutoff in sorted({r["cutoff"] for r in rows}):
        for domain in ("all", "speech", "music", "effects"):
            sel = [r for r in rows if r["cutoff"] == cutoff and domain in ("all", r["domain"])]
            ref = {r["clip"]: r for r in sel if r["system"] == base}
            for system in dict.fromkeys(r["system"] for r in sel):
                mine = {r["clip"]: r for r in sel if r["system"] == system}
                clips = sorted(c for c in mine if c in ref)
                rec = {"cutoff": int(cutoff), "domain": domain, "system": system}
                for m in ("lsd", "visqol"):
                    rec[m] = mean_ci(mine[c][m] for c in clips)
                    rec[f"d_{m}"] = paired_difference([mine[c][m] for c in clips], [ref[c][m] for c in clips])
                out.append(rec)
    return out


def write_summary(rows: list[dict], out: Path) -> None:
    recs = summary(rows)
    with open(out / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "cutoff",
                "domain",
                "system",
                "n",
                "lsd",
                "lsd_ci",
                "visqol",
                "visqol_ci",
                "d_lsd",
                "d_lsd_ci",
                "d_visqol",
                "d_visqol_ci",
            ]
        )
        for r in recs:
            w.writerow(
                [
                    r["cutoff"],
                    r["domain"],
                    r["system"],
                    r["visqol"].n,
                    *(f"{x:.3f}" for m in ("lsd", "visqol", "d_lsd", "d_visqol") for x in (r[m].mean, r[m].half_width)),
                ]
            )


# ---- markdown tables -----------------------------------------------------------------------------------------
def _fmt(sm, d=2) -> str:
    return sm.format(d)


def band_swap_mos(rows: list[dict], vq: Visqol | None = None) -> dict:
    """Per cutoff: mean MOS of the model's fvnsim with the DSP fill's put into the bands above the cutoff, or
    into the bands below it (the SVR reads fvnsim alone, so this splits the gap by frequency exactly)."""
    vq = vq or Visqol()
    out = {}
    for c in sorted({r["cutoff"] for r in rows}):
        by = {(r["clip"], r["system"]): r for r in rows if r["cutoff"] == c and r.get("fvnsim")}
        clips = sorted({k[0] for k in by if (k[0], "dsp") in by and (k[0], "ours") in by})
        cf = np.array(next(r["centres"] for r in rows if "centres" in r))
        res = {"ours": [], "dsp": [], "ours, DSP's bands above cutoff": [], "ours, DSP's bands below cutoff": []}
        for clip in clips:
            o, d = np.array(by[(clip, "ours")]["fvnsim"]), np.array(by[(clip, "dsp")]["fvnsim"])
            res["ours"].append(vq.mos_of(o))
            res["dsp"].append(vq.mos_of(d))
            res["ours, DSP's bands above cutoff"].append(vq.mos_of(np.where(cf >= c, d, o)))
            res["ours, DSP's bands below cutoff"].append(vq.mos_of(np.where(cf < c, d, o)))
        out[c] = {k: mean_ci(v) for k, v in res.items()}
    return out


def report(rows: list[dict]) -> str:
    recs = summary(rows)
    lines = []
    for c in sorted({r["cutoff"] for r in recs}):
        lines += [
            f"\n#### cutoff {c} Hz\n",
            "| domain | system | n | LSD | ViSQOL | LSD - ours | ViSQOL - ours |"
            " share of the DSP-ours ViSQOL gap closed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for dom in ("all", "speech", "music", "effects"):
            sel = [r for r in recs if r["cutoff"] == c and r["domain"] == dom]
            gap = next((r["d_visqol"].mean for r in sel if r["system"] == "dsp"), float("nan"))
            for r in sel:
                share = r["d_visqol"].mean / gap if gap and r["system"] not in ("ours",) else float("nan")
                lines.append(
                    f"| {dom} | {r['system']} | {r['visqol'].n} | {_fmt(r['lsd'])} | {_fmt(r['visqol'])} | "
                    f"{_fmt(r['d_lsd'])} | {_fmt(r['d_visqol'])} | "
                    + ("" if np.isnan(share) else f"{100 * share:.0f} %")
                    + " |"
                )
    swap = band_swap_mos(rows)
    lines += [
        "\n#### ViSQOL gap split by frequency (the SVR re-run on swapped fvnsim bands)\n",
        "| cutoff | " + " | ".join(next(iter(swap.values()))) + " |",
        "|---|" + "---|" * 4,
    ]
    for c, res in swap.items():
        lines.append(f"| {int(c)} | " + " | ".join(_fmt(v) for v in res.values()) + " |")
    for key, title in (("fvnsim", "ViSQOL fvnsim"), ("corr", "envelope correlation (ViSQOL dB view)")):
        for c in sorted({r["cutoff"] for r in rows}):
            cf = np.array(next(r["centres"] for r in rows if "centres" in r))
            idx = np.nonzero(cf >= c * 0.9)[0]
            lines += [
                f"\n#### {title} per gammatone band, cutoff {int(c)} Hz (mean over clips)\n",
                "| system | " + " | ".join(f"{cf[i] / 1000:.1f}k" for i in idx) + " |",
                "|---|" + "---|" * len(idx),
            ]
            for system in ("unprocessed", "dsp", "ours", "ours_no_lfr"):
                y = _mean_curve(rows, system, c, key)
                if y is not None:
                    lines.append(f"| {system} | " + " | ".join(f"{y[i]:.2f}" for i in idx) + " |")
    for key, title in (
        ("stft_bias", "level bias, mean over frames of dB(est) - dB(ref)"),
        ("stft_energy_ratio_db", "long-term energy ratio est / ref, dB"),
    ):
        for c in sorted({r["cutoff"] for r in rows}):
            lows = next(r["stft_band_lo_hz"] for r in rows if r["cutoff"] == c and "stft_band_lo_hz" in r)
            lines += [
                f"\n#### {title}, third octaves from the cutoff {int(c)} Hz (mean over clips)\n",
                "| system | " + " | ".join(f"{f / 1000:.1f}k" for f in lows) + " |",
                "|---|" + "---|" * len(lows),
            ]
            for system in ("dsp", "ours", "ours_no_lfr"):
                y = _mean_curve(rows, system, c, key)
                if y is not None:
                    lines.append(f"| {system} | " + " | ".join(f"{v:+.1f}" for v in y) + " |")
    return "\n".join(lines) + "\n"


# ---- where the generated band ends ---------------------------------------------------------------------------
EDGES_KHZ = (10, 12, 14, 16, 17, 18, 19, 20, 21, 22)


def top_band_profile(eval_dirs: list[Path]) -> str:
    """Long-term level (dB) per band from 10 to 22 kHz relative to the 10-12 kHz band, for the reference, the DSP
    fill and the model, over the clips whose reference content reaches 20 kHz (mini_data.measure_bandwidth)."""
    from saga_sr.experiments.mini_data import measure_bandwidth

    names = {"reference": "reference.wav", "dsp": BASE["dsp"], "ours": BASE["ours"]}
    prof: dict[str, list] = {k: [] for k in names}
    n = 0
    for eval_dir in eval_dirs:
        for _, _, d in clip_dirs(eval_dir):
            ref = load_audio(d / "reference.wav", target_sr=SR)[0][0]
            if measure_bandwidth(ref, SR) < 20000:
                continue
            n += 1
            for k, f in names.items():
                p = (np.abs(stft(load_audio(d / f, target_sr=SR)[0][0].astype(np.float64))) ** 2).sum(axis=1)
                f_hz = np.arange(len(p)) * SR / N_FFT
                lv = [
                    10 * np.log10(p[(f_hz >= a * 1000) & (f_hz < b * 1000)].mean() + 1e-20)
                    for a, b in zip(EDGES_KHZ[:-1], EDGES_KHZ[1:])
                ]
                prof[k].append(np.array(lv) - lv[0])
    head = " | ".join(f"{a}-{b}k" for a, b in zip(EDGES_KHZ[:-1], EDGES_KHZ[1:]))
    lines = [
        f"clip-cutoff pairs with reference content to 20 kHz: {n}",
        "",
        f"| signal | {head} |",
        "|---|" + "---|" * (len(EDGES_KHZ) - 1),
    ]
    for k, v in prof.items():
        if v:
            lines.append(f"| {k} | " + " | ".join(f"{x:+.1f}" for x in np.mean(v, axis=0)) + " |")
    return "\n".join(lines) + "\n"


# ---- figures -------------------------------------------------------------------------------------------------
SHOWN = (
    ("unprocessed", "C7", "unprocessed"),
    ("dsp", "C1", "DSP fill"),
    ("ours", "C0", "saga-sr-mini"),
    ("ours_no_lfr", "C0", "saga-sr-mini, no LFR"),
)


def _mean_curve(rows: list[dict], system: str, cutoff: float, key: str) -> np.ndarray:
    vals = [r[key] for r in rows if r["system"] == system and r["cutoff"] == cutoff and r.get(key) is not None]
    return np.nanmean(np.array(vals, dtype=float), axis=0) if vals else None


def plot(rows: list[dict], png: Path) -> Path:
    """Per cutoff (columns): ViSQOL fvnsim per gammatone band; envelope correlation per band; STFT level bias
    per third octave above the cutoff; means over clips."""
    from matplotlib.figure import Figure

    cutoffs = sorted({r["cutoff"] for r in rows})
    centres = next(r["centres"] for r in rows if "centres" in r)
    fig = Figure(figsize=(11, 9), layout="constrained")
    axes = fig.subplots(3, len(cutoffs), squeeze=False)
    for j, c in enumerate(cutoffs):
        lows = next(r["stft_band_lo_hz"] for r in rows if r["cutoff"] == c and "stft_band_lo_hz" in r)
        for system, color, label in SHOWN:
            ls = ":" if system == "ours_no_lfr" else "-"
            for i, key, x in ((0, "fvnsim", centres), (1, "corr", centres), (2, "stft_bias", lows)):
                y = _mean_curve(rows, system, c, key)
                if y is not None and not (i == 2 and system == "unprocessed"):
                    axes[i, j].semilogx(x, y, ls, color=color, marker=".", label=label)
        for i, name in enumerate(
            ("ViSQOL fvnsim per band", "envelope correlation (ViSQOL's dB view)", "level bias, mean dB (est - ref)")
        ):
            ax = axes[i, j]
            ax.axvline(c, color="k", lw=0.8, ls="--")
            ax.set_title(f"{name}, cutoff {int(c)} Hz", fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xlim(1000 if i < 2 else c * 0.9, 23000)
        axes[2, j].axhline(0, color="k", lw=0.8)
        axes[2, j].set_xlabel("Hz")
    axes[0, 0].legend(fontsize=8)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--extra", nargs="*", default=[], help="NAME=EVAL_DIR: another run's model output as NAME")
    ap.add_argument("--no-counterfactuals", action="store_true")
    ap.add_argument("--only", nargs="*", default=[], help="clip prefixes (e.g. speech/) to analyse")
    ap.add_argument("--merge", nargs="*", default=[], type=Path, help="summarise these rows.json files only")
    ap.add_argument("--systems", nargs="*", default=[], help="score only these systems")
    ap.add_argument("--plot", type=Path, default=None, help="write the per-band figure here")
    ap.add_argument("--profile", nargs="*", default=[], type=Path, help="eval dirs: where the model's band ends")
    a = ap.parse_args()
    if a.profile:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "top_band_profile.md").write_text(top_band_profile(a.profile))
        print((a.out / "top_band_profile.md").read_text())
        return
    if a.merge:
        rows = [r for p in a.merge for r in json.loads(p.read_text())]
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "rows.json").write_text(json.dumps(rows))
    else:
        extra = dict(x.split("=", 1) for x in a.extra)
        rows = analyse(
            a.eval_dir,
            a.out,
            {k: Path(v) for k, v in extra.items()},
            not a.no_counterfactuals,
            tuple(a.only),
            tuple(a.systems),
        )
    write_summary(rows, a.out)
    if a.plot:
        plot(rows, a.plot)
    (a.out / "report.md").write_text(report(rows))


if __name__ == "__main__":
    main()
