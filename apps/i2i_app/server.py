"""Starting the app: the queue, the launch settings that keep a public server safe, the command line.

``i2i serve`` and ``python -m i2i_app`` both end in :func:`main`. What is safe by default: the app binds to
127.0.0.1 (``--host 0.0.0.0`` to serve a network), asks for no share link, caps uploads (HTTP 413 above
``--max-file-size``), serves files only from Gradio's cache (the models folder and the weights cache are
also on Gradio's block list), shows no tracebacks, and bounds the queue.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

from i2i.errors import I2IError
from i2i_app.options import AppSettings, add_arguments, settings_from_args

log = logging.getLogger(__name__)


class RefuseRemoteFiles:
    """ASGI middleware: 403 for ``/file=<http(s) URL>``, before Gradio would fetch that URL for the caller.

    Gradio's file route streams public URLs from the server (SSRF-checked) for apps that show remote media;
    this app never does, and a public server should not be a fetch proxy for whoever asks.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            _, found, target = scope.get("path", "").partition("/file=")  # already %-decoded
            if found and target.lstrip().lower().startswith(("http:", "https:", "//")):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("remote files are not served here", status_code=403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def launch_options(settings: AppSettings) -> dict[str, Any]:
    """The keyword arguments of ``Blocks.launch`` for ``settings``."""
    from starlette.middleware import Middleware

    from i2i import hub

    blocked = [str(hub.weights_dir()), str(hub.i2i_home())]
    if settings.models_dir is not None:
        blocked.append(str(settings.models_dir.resolve()))
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "share": settings.share,
        "max_file_size": settings.max_file_size,
        "show_error": False,  # exceptions other than the handlers' one-line gr.Error stay in the server log
        "allowed_paths": [],
        "blocked_paths": blocked,
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "enable_monitoring": False,
        "footer_links": ["api", "gradio"],
        "app_kwargs": {"middleware": [Middleware(RefuseRemoteFiles)]},
    }


def queue(demo: Any, settings: AppSettings) -> Any:
    """Bound the queue: ``settings.concurrency`` jobs run, ``settings.max_queue`` wait, more are refused."""
    return demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)


def launch(settings: AppSettings, *, block: bool = True, quiet: bool = False) -> tuple[Any, str]:
    """Build, queue and start the app; returns ``(blocks, local_url)`` (after it stops, when ``block``)."""
    if importlib.util.find_spec("gradio") is None:
        raise I2IError("the web app needs Gradio: pip install 'i2i[app]' (or pip install 'gradio>=6,<7')")
    if settings.models_dir is not None and not settings.models_dir.is_dir():
        raise I2IError(f"--models: {settings.models_dir} is not a folder; give the folder holding the models")
    from i2i_app.ui import build_app

    demo = queue(build_app(settings), settings)
    _, local_url, _ = demo.launch(prevent_thread_lock=not block, quiet=quiet, **launch_options(settings))
    return demo, local_url


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m i2i_app [flags]``: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m i2i_app", description="The i2i web app (Gradio).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return serve(settings_from_args(args))


def serve(settings: AppSettings) -> int:
    """Serve until interrupted; a user error is printed on one line with exit status 2."""
    try:
        launch(settings, block=True)
    except I2IError as exc:
        print(f"i2i serve: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
