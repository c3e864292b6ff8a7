import sys

from i2i.cli import main

sys.exit(main())
