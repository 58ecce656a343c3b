"""``swinir serve``: the local web app (see :mod:`swinir.serve`)."""
from __future__ import annotations

import signal
import sys
from typing import Any, Optional

import click

from swinir.cli.options import backend_option
from swinir.cli.restore import parse_size


def _parse_memory(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[int]:
    return None if value is None else parse_size(value)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but 127.0.0.1/localhost lets other machines use the app.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--model", "model_spec", metavar="NAME|PATH", default=None,
              help="A zoo name, checkpoint or .onnx file to offer (and preselect) on the page.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=50, show_default=True,
              help="Largest image upload, in MB.")
@click.option("--max-model-mb", type=click.FloatRange(min=0, min_open=True), default=1024, show_default=True,
              help="Largest checkpoint upload, in MB.")
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), default=16, show_default=True,
              help="Largest image accepted for restoration (width x height, in millions of pixels), "
                   "checked before decoding.")
@click.option("--max-memory", "max_memory", callback=_parse_memory, default=None, metavar="SIZE",
              help="Memory budget of one restoration, e.g. 2G; larger jobs are refused "
                   "(default: half the memory available at upload).")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=30, show_default=True,
              help="Seconds a client may stall mid-request before it is dropped.")
@click.option("--device", default="auto", show_default=True, metavar="cpu|cuda|mps|auto",
              help="Where models run.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the models.")
@backend_option
def serve(host: str, port: int, model_spec: Optional[str], max_upload_mb: float, max_model_mb: float,
          max_megapixels: float, max_memory: Optional[int], read_timeout: float, device: str,
          threads: Optional[int], backend: str) -> None:
    """Run the local web app: upload images, pick a task and model, compare and download results.

    Restorations run one at a time. Uploads and results live in a temporary folder that is deleted
    when the app stops (Ctrl-C).
    """
    import torch

    from swinir.serve.app import WebApp
    from swinir.serve.http import is_loopback, make_server

    if threads is not None:
        torch.set_num_threads(threads)
    app = WebApp(model=model_spec, max_upload_mb=max_upload_mb, max_model_mb=max_model_mb, device=device,
                 max_megapixels=max_megapixels, read_timeout=read_timeout, max_memory=max_memory,
                 backend=backend)
    try:
        server = make_server(app, host, port)
    except BaseException:
        app.close()
        raise

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a server started in the background of a script has SIGINT ignored by default
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"SwinIR web app: {server.url}  (Ctrl-C stops it)")
    click.echo(f"temporary files: {app.workdir} (deleted on exit)")
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the app", err=True)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        click.echo("stopping", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        app.close()
