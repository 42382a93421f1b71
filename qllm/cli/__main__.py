"""``python -m qllm.cli``."""

import sys

from qllm.cli import main

sys.exit(main())
