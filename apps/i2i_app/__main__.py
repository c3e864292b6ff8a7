"""``python -m i2i_app`` (or ``python apps/i2i_app`` from a checkout): start the web app."""

import sys
from pathlib import Path

if not __package__:  # run as a folder (`python apps/i2i_app`): make the package importable by name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i_app.server import main  # noqa: E402

sys.exit(main())
