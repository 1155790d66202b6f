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
BASE = {"unprocessed": "unprocessed.wav", "dsp": "dsp_bwe.wav", "ours": "ours.target_default.wav",
        "ours_no_lfr": "ours_no_lfr.target_default.wav"}


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
    top = (np.abs(x[k // 2: int(0.9 * k)]) ** 2).sum(axis=0) + 1e-20
    band = (np.abs(e[k:]) ** 2).sum(axis=0) + 1e-20
    gain = np.sqrt(top / band * band.sum() / top.sum()) ** alpha
    e[k:] *= gain
    return istft(e, est.shape[-1]).astype(np.float32)


def candidates(sig: dict, cutoff: float) -> dict:
    ours, lr = sig["ours"], sig["unprocessed"]
    return {"cand:top_env": top_octave_envelope(ours, lr, cutoff, 1.0),
            "cand:top_env_0.5": top_octave_envelope(ours, lr, cutoff, 0.5)}


def counterfactuals(sig: dict, cutoff: float) -> dict:
    ours, dsp, ref = sig["ours"], sig["dsp"], sig["reference"]
    return {"ours+dsp_level": reshape_band(ours, dsp, cutoff, "level"),
            "ours+ref_level": reshape_band(ours, ref, cutoff, "level"),
            "ours+dsp_shape": reshape_band(ours, dsp, cutoff, "shape"),
            "ours+ref_shape": reshape_band(ours, ref, cutoff, "shape"),
            "ours+dsp_envelope": reshape_band(ours, dsp, cutoff, "envelope"),
            "ours+ref_envelope": reshape_band(ours, ref, cutoff, "envelope")}


# ---- driver --------------------------------------------------------------------------------------------------
def clip_dirs(eval_dir: Path) -> list[tuple[float, str, Path]]:
    out = []
    for cut_dir in sorted((eval_dir / "audio").glob("*hz")):
        for ref in sorted(cut_dir.rglob("reference.wav")):
            out.append((float(cut_dir.name[:-2]), ref.parent.relative_to(cut_dir).as_posix(), ref.parent))
    return out


def analyse(eval_dir: Path, out: Path, extra: dict[str, Path], with_cf: bool = True,
            only: tuple[str, ...] = ()) -> list[dict]:
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
            if name == "reference":
                continue
            res = vq.score(ref, est)
            row = {"clip": clip, "domain": clip.split("/")[0], "cutoff": cutoff, "system": name,
                   "lsd": lsd(ref[None], est[None], SR),
                   "visqol": float(res.moslqo) if res is not None else float("nan"),
                   "fvnsim": [float(x) for x in res.fvnsim] if res is not None else None}
            if name in BASE or name in extra:
                row.update(band_stats(vq, ref, est))
                row.update(stft_band_bias(ref, est, cutoff))
            rows.append(row)
        print(f"{int(cutoff)} {clip}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows))
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
                clips = sorted(mine)
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
        w.writerow(["cutoff", "domain", "system", "n", "lsd", "lsd_ci", "visqol", "visqol_ci", "d_lsd", "d_lsd_ci",
                    "d_visqol", "d_visqol_ci"])
        for r in recs:
            w.writerow([r["cutoff"], r["domain"], r["system"], r["visqol"].n, *(f"{x:.3f}" for m in
                        ("lsd", "visqol", "d_lsd", "d_visqol") for x in (r[m].mean, r[m].half_width))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--extra", nargs="*", default=[], help="NAME=EVAL_DIR: another run's model output as NAME")
    ap.add_argument("--no-counterfactuals", action="store_true")
    ap.add_argument("--only", nargs="*", default=[], help="clip prefixes (e.g. speech/) to analyse")
    ap.add_argument("--merge", nargs="*", default=[], type=Path, help="summarise these rows.json files only")
    a = ap.parse_args()
    if a.merge:
        rows = [r for p in a.merge for r in json.loads(p.read_text())]
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "rows.json").write_text(json.dumps(rows))
    else:
        extra = dict(x.split("=", 1) for x in a.extra)
        rows = analyse(a.eval_dir, a.out, {k: Path(v) for k, v in extra.items()}, not a.no_counterfactuals,
                       tuple(a.only))
    write_summary(rows, a.out)


if __name__ == "__main__":
    main()
