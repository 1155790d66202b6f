"""The Gradio page of `saga-sr app`: uploads or the microphone, the upsample controls, players, spectrograms,
downloads. All work is `saga_sr.app.runner` (the CLI's own per-file step); this file only lays it out.

Files: Gradio keeps uploads in its upload folder (GRADIO_TEMP_DIR, which `saga-sr app` points at a fresh
temporary folder); results go to `<that folder>/saga-sr-results/<job>/`, so Gradio serves them without a copy.
Uploads and results older than `keep_minutes` are deleted while the page runs, and everything when it stops.
Several users: one upsample runs at a time (the model is shared), the others wait in Gradio's queue.
Target roll-off: unless "Set a target roll-off" is ticked none is given, as `upsample` without the option.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

from saga_sr.app.runner import (
    Cancelled,
    JobGate,
    Outcome,
    Settings,
    Upload,
    detect_edges,
    run_uploads,
    split_uploads,
    summary_line,
)
from saga_sr.audio.io import AUDIO_EXTENSIONS
from saga_sr.inference.bands import DEFAULT_TARGET_ROLLOFF, resolve_target_rolloff
from saga_sr.inference.pipeline import Upsampler

__all__ = ["build_page", "launch", "results_folder"]

SR = 44100
MIC_NAME = "microphone.wav"


def results_folder() -> Path:
    """Where results are written: inside Gradio's upload folder, so they are served in place."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / "saga-sr-results"


def _prune(root: Path, keep_seconds: float) -> None:
    """Delete result folders older than keep_seconds (uploads are aged by Gradio's delete_cache)."""
    if not root.is_dir():
        return
    now = time.time()
    for d in root.iterdir():
        if d.is_dir() and now - d.stat().st_mtime > keep_seconds:
            shutil.rmtree(d, ignore_errors=True)


def _target_text(value: float, given: bool = True) -> str:
    if not given:
        return (
            f"no target given: conditioned on {DEFAULT_TARGET_ROLLOFF} (normalised) = "
            f"{resolve_target_rolloff(None, SR)[1] / 1000:.2f} kHz, nothing removed"
        )
    try:
        norm, hz = resolve_target_rolloff(value, SR)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return f"target roll-off **{norm:.3f}** (normalised) = **{hz / 1000:.2f} kHz**"


def given_target(given: bool, value) -> float | None:
    """The target the run is given: None unless ticked; a value outside upsample's rule is refused."""
    if not given:
        return None
    try:
        value = float(value)
        resolve_target_rolloff(value, SR)
    except (TypeError, ValueError) as exc:
        import gradio as gr

        raise gr.Error(f"target roll-off: {exc}") from None
    return value


def _inputs(files, mic) -> list:
    paths = [Path(f) for f in (files or [])]
    uploads = split_uploads(paths)
    if mic:
        uploads.append(Upload(Path(mic), MIC_NAME))
    return uploads


def _row(o: dict) -> str:
    if o["error"]:
        return f"**{o['name']}**: FAILED {o['error']}"
    b = o["bands"]
    how = "given" if o["edge_given"] else "detected"
    return (
        f"**{o['name']}**: {b['input_sr']} Hz, {b['channels']} ch, {b['input_seconds']:.1f} s of audio in "
        f"**{o['elapsed']:.1f} s** | input band edge ({how}) **{b['band_edge_hz'] / 1000:.2f} kHz** | "
        f"input roll-off {b['rolloff_hz'] / 1000:.2f} kHz ({b['rolloff_normalized']:.3f}) | target roll-off "
        f"{b['target_rolloff_normalized']:.3f} = {b['target_rolloff_hz'] / 1000:.2f} kHz"
    )


def _as_state(o: Outcome, edge_given: bool) -> dict:
    r = o.result
    return {
        "name": o.upload.name,
        "input": str(o.upload.path),
        "error": o.error,
        "output": str(r.dst) if r else None,
        "spectrogram": str(o.spectrogram) if o.spectrogram else None,
        "elapsed": r.elapsed if r else None,
        "bands": r.info.to_json() if r else None,
        "edge_given": edge_given,
    }


def build_page(
    up: Upsampler,
    *,
    model_label: str,
    defaults: Settings = Settings(),
    keep_minutes: float = 60.0,
    gate: JobGate | None = None,
):
    """The page as a gr.Blocks (queue configured, not launched). API names: /detect, /upsample, /show.
    Controls start at `defaults`, with the steps and CFG scales they leave out taken from the model.
    `gate`: the caller's handle to stop running jobs at shutdown (`JobGate.stop_and_wait`)."""
    import gradio as gr

    gate = gate if gate is not None else JobGate()
    defaults = defaults.resolved(up.model.settings)

    out_root = results_folder()
    keep = keep_minutes * 60.0
    exts = sorted(AUDIO_EXTENSIONS) + [".txt"]

    def detect(files, mic):
        uploads = _inputs(files, mic)
        rows = detect_edges(up, uploads)
        lines = [
            f"- {name}: detected band edge **{edge / 1000:.2f} kHz** ({note})"
            if edge is not None
            else f"- {name}: {note}"
            for name, edge, note in rows
        ]
        lines += [f"- {u.name}: caption from {u.sidecar.name}" for u in uploads if u.sidecar]
        edges = [edge for _, edge, _ in rows if edge is not None]
        value = round(edges[0]) if len(rows) == 1 and edges else None  # several files: each its own
        return value, value, "\n".join(lines) or "No input yet."

    def show(state, name):
        """(input, output, spectrogram) of the result named `name`."""
        o = next((o for o in state or [] if o["name"] == name), None)
        return (o["input"], o["output"], o["spectrogram"]) if o else (None, None, None)

    def run(
        files,
        mic,
        set_target,
        target,
        prompt,
        steps,
        cfg_audio,
        cfg_text,
        seed,
        lfr,
        edge,
        shown_edge,
        progress=gr.Progress(),
    ):
        uploads = _inputs(files, mic)
        if not uploads:
            raise gr.Error("Nothing to upsample: upload audio files or record from the microphone.")
        target = given_target(bool(set_target), target)
        if edge is not None and edge <= 0:
            raise gr.Error("input band edge: must be positive (Hz), or empty to detect it per file")
        if not steps or steps < 1:
            raise gr.Error("steps: must be at least 1")
        if edge is not None and shown_edge is not None and round(edge) == shown_edge:
            edge = None  # the detected value, untouched: detect again, unrounded
        settings = replace(
            defaults,
            target_rolloff=target,
            prompt=(prompt or "").strip() or None,
            steps=int(steps),
            cfg_audio=float(cfg_audio),
            cfg_text=float(cfg_text),
            seed=int(seed or 0),
            lfr=bool(lfr),
            input_cutoff_hz=float(edge) if edge is not None else None,
        )
        _prune(out_root, keep)
        job = out_root / uuid.uuid4().hex[:12]
        try:
            with gate.running():
                outcomes = run_uploads(
                    up, uploads, job, settings, report=lambda f, text: progress(f, desc=text), gate=gate
                )
        except Cancelled as exc:  # an answer, not an error: the server is going away, nothing to report
            shutil.rmtree(job, ignore_errors=True)
            return [], gr.update(choices=[], value=None), None, None, None, f"stopped: {exc}", None, f"stopped: {exc}"
        state = [_as_state(o, edge is not None) for o in outcomes]
        log = "\n".join([line for o in outcomes for line in o.log] + [summary_line(outcomes)])
        for o in outcomes:
            if o.error:
                gr.Warning(o.error)
        names = [o["name"] for o in state]
        first = next((o["name"] for o in state if not o["error"]), names[0])
        downloads = [o["output"] for o in state if o["output"]]
        table = "\n\n".join(_row(o) for o in state)
        return state, gr.update(choices=names, value=first), *show(state, first), table, downloads or None, log

    with gr.Blocks(title="saga-sr", analytics_enabled=False, delete_cache=(600, int(keep))) as page:
        gr.Markdown(
            f"## saga-sr: audio super-resolution to 44.1 kHz\nModel: `{model_label}`. Upload band-limited "
            "audio (any rate from 4 to 48 kHz; several files at once; a `NAME.caption.txt` uploaded with "
            "`NAME.wav` is its caption) or record from the microphone."
        )
        with gr.Row():
            with gr.Column():
                files = gr.File(
                    label="Audio files", file_count="multiple", file_types=exts, type="filepath", elem_id="inputs"
                )
                mic = gr.Audio(label="... or record", sources=["microphone"], type="filepath", elem_id="mic")
                detected = gr.Markdown("No input yet.", elem_id="detected")
            with gr.Column():
                given = defaults.target_rolloff is not None
                shown = defaults.target_rolloff if given else DEFAULT_TARGET_ROLLOFF
                set_target = gr.Checkbox(
                    value=given,
                    label="Set a target roll-off (off: none given, as upsample "
                    "without --target-rolloff; nothing is removed)",
                    elem_id="set-target",
                )
                target = gr.Slider(
                    0.05,
                    1.0,
                    value=shown,
                    step=0.005,
                    label="Target roll-off (normalised; 1.0 = 22.05 kHz)",
                    elem_id="target",
                )
                target_hz = gr.Markdown(_target_text(shown, given), elem_id="target-hz")
                prompt = gr.Textbox(
                    label="Prompt (empty: each file's NAME.caption.txt if uploaded, else none)",
                    value=defaults.prompt or "",
                    elem_id="prompt",
                )
                edge = gr.Number(
                    label="Input band edge, Hz (detected on upload; empty: detect per file)",
                    value=defaults.input_cutoff_hz,
                    minimum=0,
                    elem_id="edge",
                )
                with gr.Row():
                    steps = gr.Slider(1, 250, value=defaults.steps, step=1, label="Steps", elem_id="steps")
                    seed = gr.Number(value=defaults.seed, precision=0, label="Seed", elem_id="seed")
                with gr.Row():
                    cfg_audio = gr.Slider(0.0, 5.0, value=defaults.cfg_audio, step=0.05, label="CFG scale, audio (s_a)")
                    cfg_text = gr.Slider(0.0, 5.0, value=defaults.cfg_text, step=0.05, label="CFG scale, text (s_t)")
                lfr = gr.Checkbox(value=defaults.lfr, label="Low-frequency replacement (keep the input band)")
                go = gr.Button("Upsample", variant="primary", elem_id="run")
        gr.Markdown("### Result")
        state, shown_edge = gr.State([]), gr.State(None)
        choice = gr.Dropdown(label="Show file", choices=[], elem_id="choice")
        with gr.Row():
            in_player = gr.Audio(label="Input", type="filepath", interactive=False, elem_id="input-player")
            out_player = gr.Audio(
                label="Output (44.1 kHz)", type="filepath", interactive=False, elem_id="output-player"
            )
        gr.Markdown(
            "Spectrograms: the input (resampled to 44.1 kHz) and the output on the same axes; dashed: "
            "the input band edge the run used."
        )
        spec = gr.Image(
            label="Spectrograms: input and output on the same axes, the input band edge dashed",
            type="filepath",
            interactive=False,
            show_label=False,
            elem_id="spectrogram",
        )
        table = gr.Markdown(elem_id="summary")
        downloads = gr.File(
            label="Download (44.1 kHz WAV)", file_count="multiple", interactive=False, elem_id="downloads"
        )
        log = gr.Textbox(label="Log (as the command line prints it)", lines=3, interactive=False, elem_id="log")

        files.change(detect, [files, mic], [edge, shown_edge, detected], api_name="detect", concurrency_limit=2)
        mic.change(detect, [files, mic], [edge, shown_edge, detected], api_name=False, concurrency_limit=2)
        for control in (target, set_target):
            control.change(
                lambda v, on: _target_text(v, on), [target, set_target], target_hz, api_name=False, queue=False
            )
        go.click(
            run,
            [files, mic, set_target, target, prompt, steps, cfg_audio, cfg_text, seed, lfr, edge, shown_edge],
            [state, choice, in_player, out_player, spec, table, downloads, log],
            api_name="upsample",
            concurrency_limit=1,
            concurrency_id="model",
        )
        choice.change(show, [state, choice], [in_player, out_player, spec], api_name="show")
    return page.queue(default_concurrency_limit=1)


def launch(page, *, host: str, port: int, max_upload_mb: float, block: bool = True):
    """Serve the page; the theme uses system fonts so the browser fetches nothing from outside."""
    import gradio as gr

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    return page.launch(
        server_name=host,
        server_port=port,
        max_file_size=int(max_upload_mb * 1024 * 1024),
        share=False,
        prevent_thread_lock=not block,
        show_error=True,
        theme=theme,
        ssr_mode=False,
        mcp_server=False,
        run_history=False,
        inbrowser=False,
        quiet=True,
    )
