"""benchmarks/gpu_check.py, the one device script, runs on CPU at a micro size: so it is known to work before a
GPU session spends its minutes on it."""
import json
import subprocess
import sys

from textdiff.models import model_names
from tests.conftest import REPO


def test_the_gpu_check_runs_end_to_end_on_cpu_at_a_micro_size(tmp_path):
    out = tmp_path / "gpu_check.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-micro", "--steps", "30",
                    "--out", str(out)], check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["gpu_tests"]["passed"]
    assert set(result["models"]) == set(model_names())
    for name, row in result["models"].items():
        assert row["eager"]["median_step_s"] > 0 and row["generation_batch1_ms"]["min"] > 0
        assert row["training"]["steps"] == 30
    assert result["models"]["ar"]["training"]["loss_fell"]
    flops = {name: row["eager"]["training_flops_per_row"] for name, row in result["models"].items()}
    assert max(flops, key=flops.get) == "sdd"  # the heaviest step: the backbone runs over L*k positions
    assert result["memory"]["model"] == "sdd"
