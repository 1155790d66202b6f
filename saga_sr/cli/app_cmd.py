"""`saga-sr app [--model DIR] [--host 127.0.0.1] [--port 7860]`: a local web page for upsampling.

The page (saga_sr.app.page) runs the same per-file step as `saga-sr upsample`. It binds to 127.0.0.1 unless
--host says otherwise; uploads (at most --max-upload-mb each) and results live in a temporary folder that is
pruned while the page runs and deleted when it stops. Needs the `app` extra: pip install "saga-sr[app]".

Stopping (Ctrl+C, SIGTERM): a running job is asked to end at its next sampling step and waited for, up to
STOP_WAIT_S, before the process exits: a worker thread still inside torch at exit aborts the process
("terminate called without an active exception"). A job that does not end in time is left by `os._exit`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import tempfile

from saga_sr.cli.options import model_or_shipped, positive_float, positive_int

DESCRIPTION = __doc__.split("\n\n", 1)[1].split("\n\n", 1)[0] if __doc__ else ""
STOP_WAIT_S = 30.0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app",
        help="a local web page for upsampling (Gradio)",
        description="Serve a web page to upsample files or microphone recordings with a model.\n\n" + DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        metavar="DIR",
        help="exported model folder or training .ckpt (default: the model shipped with the package)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default %(default)s: this machine only; 0.0.0.0 serves every network "
        "this machine is on, with no login)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    p.add_argument(
        "--max-upload-mb",
        type=positive_float,
        default=500.0,
        metavar="MB",
        help="largest file accepted per upload in MiB (default %(default)g)",
    )
    p.add_argument(
        "--keep-minutes",
        type=positive_float,
        default=60.0,
        metavar="M",
        help="uploads and results older than this are deleted while the page runs (default %(default)g)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16"],
        help="DiT autocast precision (default %(default)s)",
    )
    p.add_argument("--batch-size", type=positive_int, default=4, help="windows per DiT batch (default %(default)s)")
    p.add_argument("--text-encoder-path", metavar="PATH", help="local T5 folder for pretrained-T5 configs")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stop_jobs(gate, timeout: float = STOP_WAIT_S) -> bool:
    """Ask the page's running job to end and wait for it; True when none runs. A second Ctrl+C stops waiting."""
    try:
        return gate.stop_and_wait(timeout)
    except KeyboardInterrupt:
        return gate.stop_and_wait(0.0)


def run(args: argparse.Namespace) -> int:
    from saga_sr.cli import CliError

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: must be 1-65535")
    model_path = model_or_shipped(args.model)
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError as exc:
        raise CliError('the web page needs Gradio: pip install "saga-sr[app]"') from exc

    from saga_sr.app.page import build_page, launch
    from saga_sr.app.runner import JobGate, Settings
    from saga_sr.cli.options import torch_device
    from saga_sr.inference.pipeline import Upsampler
    from saga_sr.models.checkpoint import load_model

    device = torch_device(args.device)
    model = load_model(model_path, device=device, text_encoder_path=args.text_encoder_path)
    up = Upsampler(model, device, args.precision)
    # SIGTERM (a service manager, `timeout`) stops the page like Ctrl+C, so the temporary folder is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Ctrl+C stops the page even when a parent shell started us with SIGINT ignored (a background job of a
    # non-interactive shell, e.g. `ci-script &`): Python keeps an inherited SIG_IGN
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gate = JobGate()
    with tempfile.TemporaryDirectory(prefix="saga-sr-app-") as tmp:
        os.environ["GRADIO_TEMP_DIR"] = tmp  # Gradio's upload folder: read when the page is built
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        page = build_page(
            up,
            model_label=str(model_path),
            defaults=Settings(batch_size=args.batch_size),
            keep_minutes=args.keep_minutes,
            gate=gate,
        )
        where = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
        print(f"saga-sr app: serving {model_path} on {where} (uploads in {tmp}; Ctrl+C stops)", file=sys.stderr)
        if not is_loopback(args.host):
            print(
                f"saga-sr app: WARNING --host {args.host}: anyone who can reach this machine on port "
                f"{args.port} can use the page and its API (upload files, run the model); there is no login",
                file=sys.stderr,
            )
        try:
            launch(page, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, block=True)
        except OSError as exc:
            raise CliError(f"--host {args.host} --port {args.port}: cannot serve ({exc})") from exc
        finally:
            stopped = stop_jobs(gate)
            page.close()
    if not stopped:  # a worker thread is still inside the model: a normal exit would abort in torch's teardown
        print(f"saga-sr app: a running job did not stop within {STOP_WAIT_S:g} s; exiting without it", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 0
