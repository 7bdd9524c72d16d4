"""``python -m trainer``: the same command line as the ``trainer`` console script."""

import sys

from trainer.cli import main

# Error lines start with the program name taken from argv[0]; under -m that would be "__main__.py".
sys.argv[0] = "trainer"
sys.exit(main())
