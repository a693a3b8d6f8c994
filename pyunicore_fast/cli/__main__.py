"""``python -m pyunicore_fast.cli``: same as the ``pyunicore-fast`` console command."""

import sys

from pyunicore_fast.cli.main import main

sys.exit(main())
