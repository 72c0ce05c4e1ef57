"""Report on a sweep: `python scripts/report.py outputs/multirun/DATE/TIME` (see seqlab.report)."""

import sys

from seqlab.report import main

if __name__ == "__main__":
    sys.exit(main())
