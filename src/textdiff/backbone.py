"""The one transformer backbone shared by AR, MDLM and SDD.

Pre-norm blocks, rotary position embeddings on queries and keys, and
`F.scaled_dot_product_attention` for every attention (causal for AR, full for
MDLM, full with an additive key bias for SDD). Each model wraps this backbone
with its own input embedding and output head; the backbone never knows which
model it serves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BackboneConfig:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_positions: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """Full-width tables [N, head_dim] for integer positions [N]: cos, and sin with the sign that
    `apply_rotary` needs on the first half."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]
    return angles.cos().repeat(1, 2), torch.cat((-angles.sin(), angles.sin()), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., i], x[..., i + h]) of x [..., N, head_dim] by the position angles:
    (x1 cos - x2 sin, x2 cos + x1 sin), computed as x cos + swap_halves(x) signed_sin, which is four
    tensor ops and gives the same floats as the pairwise formula."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin


class KVCache:
    """Keys and values of the positions seen so far, one pair per layer (AR generation)."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        if self.keys[layer] is not None:
            k = torch.cat((self.keys[layer], k), dim=2)
            v = torch.cat((self.values[layer], v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def biased_attention(q, k, v, key_bias):
    """softmax(q.k / sqrt(d) + b_key) v for a per-key bias b [B, 1, 1, N], through SDPA's fused kernels.

    When the bias needs a gradient (training), passing it as attn_mask makes SDPA materialise the
    [B, H, N, N] scores (its math path). A per-key bias is instead one extra q/k dimension: q gets 1 and k gets
    b * sqrt(d), so q'.k' / sqrt(d) = q.k / sqrt(d) + b exactly. Zero padding to a multiple of 8 keeps
    the head size that fused kernels want; the padding of v is dropped from the output.
    """
    batch, heads, length, head_dim = q.shape
    pad = 8 - head_dim % 8 if head_dim % 8 else 8
    extra_q = torch.zeros(batch, heads, length, pad, dtype=q.dtype, device=q.device)
    extra_q[..., 0] = 1
    bias = (key_bias.reshape(batch, 1, length, 1) * head_dim**0.5).to(k.dtype).expand(batch, heads, length, 1)
    extra_k = torch.cat((bias, k.new_zeros(batch, heads, length, pad - 1)), dim=-1)
    q = torch.cat((q, extra_q), dim=-1)
    k = torch.cat((k, extra_k), dim=-1)
    v = torch.cat((v, v.new_zeros(batch, heads, length, pad)), dim=-1)
    return F.scaled_dot_product_attention(q, k, v, scale=head_dim**-0.5)[..., :head_dim]


class Attention(nn.Module):
    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x, cos, sin, causal: bool, key_bias, cache: KVCache | None, layer: int):
        batch, length, width = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(qkv[:2], cos, sin)  # queries and keys in one pass
        v = qkv[2]
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # With a cache, the new queries are the last positions: a single new query sees all keys,
        # so the causal mask is only needed when several queries arrive at once.
        is_causal = causal and q.shape[2] > 1
        if is_causal and k.shape[2] != q.shape[2]:
            raise ValueError("cached causal attention takes one new position at a time")
        if key_bias is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        elif torch.is_grad_enabled():
            y = biased_attention(q, k, v, key_bias)
        else:
            # Without a gradient (sampling, validation) the bias can go in as a mask broadcast over queries,
            # which the fused kernels take as it is: no padded head dimension (20% less attention at the CPU
            # default) and no concatenations.
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias.to(q.dtype))
        return self.out(y.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.mlp_norm = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff, bias=False),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model, bias=False),
        )
        # A training recipe's setting, not part of the architecture: set by Backbone.set_residual_dropout.
        self.residual_dropout = 0.0

    def forward(self, x, cos, sin, causal, key_bias, cache, layer):
        x = x + self._dropped(self.attn(self.attn_norm(x), cos, sin, causal, key_bias, cache, layer))
        return x + self._dropped(self.mlp(self.mlp_norm(x)))

    def _dropped(self, branch):
        """A residual branch's output with dropout while training (GPT-2's and MDLM's resid_pdrop); at 0 it
        is not called at all, so a run without dropout draws no random numbers for it."""
        if self.residual_dropout and self.training:
            return F.dropout(branch, self.residual_dropout, training=True)
        return branch


class Backbone(nn.Module):
    """Maps input vectors [B, N, d_model] at integer positions [N] to hidden states [B, N, d_model]."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        if config.d_model % config.n_heads or config.head_dim % 2:
            raise ValueError("n_heads must divide d_model into an even head size")
        self.config = config
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model)
        cos, sin = rotary_tables(torch.arange(config.max_positions), config.head_dim)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        causal: bool = False,
        key_bias: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """key_bias, if given, is added to every attention score for that key: shape [B, 1, 1, N]
        (full attention only)."""
        cos, sin = self.rotary_cos[positions], self.rotary_sin[positions]
        if key_bias is not None:
            key_bias = key_bias.to(x.dtype)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, causal, key_bias, cache, layer)
        return self.final_norm(x)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layers)

    def set_residual_dropout(self, probability: float) -> None:
        """Dropout on every block's two residual branches while training (0: none)."""
        for block in self.blocks:
            block.residual_dropout = probability

    @torch.no_grad()
    def scale_residual_init(self) -> None:
        """GPT-2's initialisation of the projections that write into the residual stream (attention's output and
        the MLP's second layer): their N(0, 0.02^2) weights scaled by 1/sqrt(2 * n_layers), so that the stream's
        variance at init does not grow with depth (Radford et al. 2019, section 2.3). Scaling the drawn weights
        gives the same distribution as drawing at the smaller std, and draws no further random numbers."""
        for block in self.blocks:
            for projection in (block.attn.out, block.mlp[2]):
                projection.weight.mul_((2 * self.config.n_layers) ** -0.5)


def sinusoidal_embedding(values: torch.Tensor, width: int, max_period: float = 10000.0) -> torch.Tensor:
    """Classic transformer sinusoids of (integer or real) values [...] -> [..., width]."""
    half = width // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=values.device) / half)
    angles = values.float()[..., None] * freqs
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def init_weights(module: nn.Module, std: float = 0.02):
    """GPT-2 style initialisation, applied to every Linear and Embedding of a model."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if getattr(sub, "bias", None) is not None:
                nn.init.zeros_(sub.bias)
