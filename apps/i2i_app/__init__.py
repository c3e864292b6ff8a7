"""The i2i web app: Gradio tabs to translate, upscale and generate images, on a GPU when there is one.

Start it with ``i2i serve`` or ``python -m i2i_app`` (``--help`` lists the flags). From Python::

    from i2i_app import AppSettings, build_app
    demo = build_app(AppSettings(models_dir=Path("runs/demo/checkpoints")))

It uses only i2i's inference and hub APIs (plus image reading and the project's exceptions), so
everything it runs is also available from Python and the ``i2i`` command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from i2i_app.options import AppSettings

if TYPE_CHECKING:
    from i2i_app.server import launch
    from i2i_app.ui import build_app


def __getattr__(name: str) -> Any:
    # Lazy: `i2i --help` imports the options, and must not pay for importing Gradio and torch.
    if name == "build_app":
        from i2i_app.ui import build_app

        return build_app
    if name == "launch":
        from i2i_app.server import launch

        return launch
    raise AttributeError(f"module 'i2i_app' has no attribute {name!r}")


__all__ = ["AppSettings", "build_app", "launch"]
