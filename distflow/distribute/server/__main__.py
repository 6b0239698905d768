"""`python -m distflow.distribute.server`: see `entry.main`."""

import sys

from distflow.distribute.server.entry import main

if __name__ == "__main__":
    sys.exit(main())
