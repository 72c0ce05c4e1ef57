"""torch's threads: a SLURM task's share of its node, not every core of the node."""

from __future__ import annotations

import pytest
import torch

from seqlab.launch import available_cores, share_machine

SLURM = ("SLURM_JOB_ID", "SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "SLURM_NTASKS_PER_NODE")


@pytest.fixture
def threads_restored(monkeypatch):
    for name in SLURM:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("env", "cores"),
    [
        ({"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "3"}, 3),
        # no --cpus-per-task: the node's allocated CPUs shared by its tasks
        ({"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "8", "SLURM_NTASKS_PER_NODE": "4"}, 2),
        ({"SLURM_JOB_ID": "7", "SLURM_CPUS_ON_NODE": "1", "SLURM_NTASKS_PER_NODE": "2"}, 1),
    ],
)
def test_a_slurm_task_runs_torch_on_its_share_of_the_node(
    make_cfg, monkeypatch, threads_restored, env, cores
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    torch.set_num_threads(16)  # torch's default on a 16-core node

    share_machine(make_cfg("experiment=hihello"))

    assert available_cores() == cores
    assert torch.get_num_threads() == cores


def test_num_threads_wins_over_slurms_share(make_cfg, monkeypatch, threads_restored):
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")

    share_machine(make_cfg("experiment=hihello", "num_threads=1"))

    assert torch.get_num_threads() == 1


def test_outside_slurm_torchs_threads_are_left_alone(make_cfg, threads_restored):
    torch.set_num_threads(2)

    share_machine(make_cfg("experiment=hihello"))

    assert torch.get_num_threads() == 2
