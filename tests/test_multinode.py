"""Two DDP "nodes" on this machine, started as on real machines: torchrun once per node."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_script

# a short lesson run: the two launches are compared, not the lesson's target
RUN = ["experiment=longtext", "trainer=ddp_cpu", "trainer.max_epochs=5", "seed=3"]
RUN += ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_nodes(cwd: Path, *overrides: str, nodes: int = 2) -> list[subprocess.Popen]:
    """``torchrun --nnodes=N --nproc-per-node=1 --node-rank=R ...`` once per node, as the README."""
    port, env = free_port(), {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}"]
    torchrun += ["--nproc-per-node=1", "--master-addr=127.0.0.1", f"--master-port={port}"]
    script = [str(ROOT / "scripts" / "train.py"), *overrides]
    started = []
    for rank in range(nodes):
        command = [*torchrun, f"--node-rank={rank}", *script]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        started.append(subprocess.Popen(command, cwd=cwd, env=env, text=True, **pipes))
    return started


def test_two_torchrun_nodes_train_as_two_local_ddp_processes_do(tmp_path):
    (tmp_path / "nodes").mkdir()
    # both nodes on 2 cores: one torch thread each, as Lightning gives its own CPU processes
    nodes = torchrun_nodes(
        tmp_path / "nodes", *RUN, "trainer.devices=1", "trainer.num_nodes=2", "num_threads=1",
        "hydra.run.dir=run",
    )  # fmt: skip
    ended = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, ended, strict=True):
        assert node.returncode == 0, err[-3000:]
    local = run_script("train.py", *RUN, "trainer.devices=2", "hydra.run.dir=run", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-3000:]

    # one run dir, written by global rank 0 alone
    assert [p.name for p in (tmp_path / "nodes").iterdir()] == ["run"]
    assert len(list((tmp_path / "nodes" / "run").glob("events.out.tfevents.*"))) == 1
    two_nodes = json.loads((tmp_path / "nodes" / "run" / "metrics.json").read_text())
    one_node = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (two_nodes["world_size"], two_nodes["num_nodes"]) == (2, 2)
    assert two_nodes["cluster_environment"] == "TorchElasticEnvironment"
    assert (one_node["world_size"], one_node["num_nodes"]) == (2, 1)
    assert two_nodes["status"] == one_node["status"] == "completed"
    assert two_nodes["final"] == pytest.approx(one_node["final"], rel=1e-5)
    assert two_nodes["final"]["val/acc"] > 0.2  # it trained: 5 epochs of the lesson
    print(f"2 nodes {two_nodes['final']}\n1 node  {one_node['final']}")
