"""`python -m distflow.distribute.server`: see `entry.main`."""

import sys

from distflow.distribute.server.entry import main

sys.exit(main())
