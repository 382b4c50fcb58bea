"""Model FLOPs per training step and MFU, as nanoGPT and the PaLM paper estimate them.

A training step costs about 6 FLOPs per weight per position it is applied to (forward
2, backward 4), plus 12 * layers * d_model * context per position for the attention
scores and their weighted sums. Embedding lookups are free; the output head is a matmul
applied at every predicted position. MFU = achieved model FLOP/s / the chip's peak.
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


def training_flops_per_row(model, seq_len: int) -> float:
    """FLOPs of one training row of seq_len tokens (forward and backward)."""
    positions = seq_len * model.positions_per_token  # SDD attends over k candidates per token
    config = model.backbone.config
    backbone_weights = sum(p.numel() for name, p in model.backbone.named_parameters() if p.dim() == 2)
    head = model.head.weight.numel()  # applied once per token (SDD: after its readout over the k)
    attention = 12 * config.n_layers * config.d_model * positions * positions
    return 6 * backbone_weights * positions + 6 * head * seq_len + attention
