"""seqlab on one CUDA GPU in at most 8 minutes, one table: `python scripts/gpu_check.py`
(`--dry-run`: the same steps on the CPU, tiny; see seqlab.gpu_check)."""

import sys

from seqlab.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
