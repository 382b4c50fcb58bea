"""torchrun: the train stage runs unchanged under 2 CPU processes (gloo) and matches one process."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from textdiff.data import save_rows
from tests.conftest import REPO, micro_params_dict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("model", ["ar"])
def test_two_processes_match_one_on_the_same_global_batch(tmp_path, model):
    # AR's objective draws no noise, so one process and two must agree up to float summation order.
    raw = micro_params_dict()
    raw["scales"]["cpu"].update(steps=8, batch_size=8)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    save_rows(tmp_path / "train.npy", np.random.default_rng(0).integers(4, 40, size=(128, 16)).astype(np.uint16))
    save_rows(tmp_path / "valid.npy", np.random.default_rng(1).integers(4, 40, size=(16, 16)).astype(np.uint16))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    stage = [str(REPO / "stages" / "train.py"), model, "--rows", "train.npy", "--valid-rows", "valid.npy",
             "--checkpoints", "ckpt"]
    single = subprocess.run([sys.executable, *stage, "--out", "one"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    double = subprocess.run([*torchrun, *stage, "--out", "two"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert double.returncode == 0, double.stderr
    one_log, two_log = ((tmp_path / d / "train_log.csv").read_text().splitlines()[1:] for d in ("one", "two"))
    one_loss = [float(line.split(",")[1]) for line in one_log]
    two_loss = [float(line.split(",")[1]) for line in two_log]
    assert len(one_loss) == len(two_loss) == 8
    assert np.allclose(one_loss, two_loss, atol=1e-4), (one_loss, two_loss)
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert yaml.safe_load((tmp_path / "two" / "train_summary.json").read_text())["processes"] == 2
    curves = [(tmp_path / d / "learning_curve.csv").read_text().splitlines() for d in ("one", "two")]
    assert len(curves[0]) == len(curves[1]) > 1  # rank 0 scores the curve; the other rank waits for it


def test_batch_that_does_not_split_over_processes_is_refused(tmp_path):
    raw = micro_params_dict()
    raw["scales"]["cpu"].update(batch_size=5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    save_rows(tmp_path / "train.npy", np.random.default_rng(0).integers(4, 40, size=(32, 16)).astype(np.uint16))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    result = subprocess.run([*torchrun, str(REPO / "stages" / "train.py"), "ar", "--rows", "train.npy", "--out", "x"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "error: params.yaml: scales.cpu.batch_size must divide evenly over 2 processes, got 5" in result.stderr
