"""Model FLOPs per training step and MFU, as nanoGPT and the PaLM paper estimate them.

A training step costs about 6 FLOPs per weight per position it is applied to (forward
2, backward 4), plus 12 * layers * d_model * context per position for the attention
scores and their weighted sums. Embedding lookups are free; the output head is a matmul
applied at every predicted position. MFU = achieved model FLOP/s / the chip's peak.
Each model states its own positions (models/*.py: `training_flops_per_row`).
"""
from __future__ import annotations

import torch

# bf16 dense peak FLOP/s by device-name fragment (vendor datasheets).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in PEAK_BF16_FLOPS.items() if fragment in name), None)


def transformer_training_flops(backbone, head_weights: int, positions: int, predicted: int) -> float:
    """FLOPs of one training row (forward and backward): the backbone over `positions` positions,
    the output head (`head_weights` weights) at `predicted` positions."""
    config = backbone.config
    backbone_weights = sum(p.numel() for p in backbone.parameters() if p.dim() == 2)
    attention = 12 * config.n_layers * config.d_model * positions * positions
    return 6 * backbone_weights * positions + 6 * head_weights * predicted + attention
