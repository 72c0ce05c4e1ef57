"""keep_freed_memory: a training loop's freed memory is reused, not mapped afresh every step."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import compose_train

# 20 steps that each allocate and free 64 MiB, as a step's activations are: the page faults of
# the last 19 (glibc's defaults unmap the block at every free, and each step faults it in again)
LOOP = """
import resource, sys, torch
from seqlab.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else None
def step():
    torch.ones(16 * 2**20).sum()  # 64 MiB, every page touched
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    step()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True
    )
    kept, faults = done.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_step_memory_is_reused_instead_of_faulted_in_again_every_step():
    pages = 19 * 64 * 2**20 // 4096  # every page of every step, faulted in again

    _, default = _faults("default")
    kept, tuned = _faults("kept")

    assert default > pages * 9 // 10  # glibc's defaults: each step maps its block afresh
    # kept: the blocks the first steps freed are reused (seen: 4 to 6 blocks' pages in all,
    # as aligned blocks land a little further up the heap, against all 19)
    assert kept == "True" and tuned < pages // 2


def test_keep_freed_memory_is_a_run_setting_on_by_default_and_checked(tmp_path):
    import seqlab.config  # noqa: F401 - the resolvers the configs use
    from seqlab.errors import SettingError
    from seqlab.settings import check_train_config

    assert check_train_config(compose_train(tmp_path)).keep_freed_memory is True
    off = compose_train(tmp_path, "keep_freed_memory=false")
    assert check_train_config(off).keep_freed_memory is False
    with pytest.raises(SettingError, match="keep_freed_memory"):
        check_train_config(compose_train(tmp_path, "keep_freed_memory=sometimes"))
