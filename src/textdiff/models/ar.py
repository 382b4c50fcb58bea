"""AR: a causal transformer trained on next-token cross-entropy (the baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..backbone import BackboneConfig
from ..checks import boolean, integer, section
from ..tokenizer import SPECIAL_IDS
from . import register
from .base import ModelCard, TokenModel, nucleus, sample_categorical, top_k_only, top_p_option


@dataclass(frozen=True)
class ARParams:
    tie_embeddings: bool


@register
class AutoregressiveLM(TokenModel):
    card = ModelCard("ar", "AR", loss_meaning="next-token cross-entropy", nll_kind="exact",
                     accuracy_definition="next-token argmax accuracy over all validation tokens")
    Params = ARParams
    benchmark_cases = {"KV cache": {"use_cache": True}, "recompute prefix": {"use_cache": False}}
    benchmark_by_length = True

    @classmethod
    def parse_params(cls, raw, vocab_size):
        return ARParams(boolean(section(raw, "ar"), "tie_embeddings", "ar."))

    @classmethod
    def parse_sampling(cls, group, prefix):
        return {**super().parse_sampling(group, prefix), "top_p": top_p_option(group, prefix),
                "top_k": integer(group, "top_k", prefix, optional=True)}

    def __init__(self, vocab_size: int, backbone: BackboneConfig, tie_embeddings: bool = True,
                 bos_id: int = SPECIAL_IDS["bos"]):
        super().__init__(vocab_size, backbone, tie_embeddings)
        self.bos_id = bos_id

    def logits(self, tokens: torch.Tensor, cache=None) -> torch.Tensor:
        """Next-token logits [B, N, V]; with a KV cache, tokens continue the cached positions."""
        return super().logits(tokens, 0 if cache is None else cache.length, causal=True, cache=cache)

    def _inputs(self, rows: torch.Tensor) -> torch.Tensor:
        # A BOS in front lets every one of the L tokens of a row be predicted, the first from BOS alone.
        bos = torch.full_like(rows[:, :1], self.bos_id)
        return torch.cat((bos, rows[:, :-1]), dim=1)

    def training_loss(self, rows, generator):
        logits = self.logits(self._inputs(rows))
        return F.cross_entropy(logits.flatten(0, 1).float(), rows.flatten())

    @torch.no_grad()
    def validation_sums(self, rows, generator=None):
        """Exact NLL of rows [B, L], every token scored from BOS and its prefix; also what the judge
        scores samples with."""
        logits = self.logits(self._inputs(rows)).float()
        token_nll = F.cross_entropy(logits.flatten(0, 1), rows.flatten(), reduction="none").view(rows.shape)
        tokens = torch.full((len(rows),), rows.shape[1], device=rows.device)
        return {"nll": token_nll.sum(1), "tokens": tokens, "correct": (logits.argmax(-1) == rows).sum(1),
                "predicted": tokens}

    @torch.no_grad()
    def generate(self, batch_size, length, generator, temperature: float = 1.0, use_cache: bool = True,
                 top_p: float | None = None, top_k: int | None = None):
        """Left to right, each token drawn (float64) from softmax(logits / temperature), restricted to its
        top_k most probable tokens and then to its nucleus of mass top_p where those are set."""
        tokens = torch.full((batch_size, 1), self.bos_id, dtype=torch.long, device=self.device)
        cache = self.backbone.new_cache() if use_cache else None
        step_input = tokens
        for _ in range(length):
            # With the cache only the newest token goes through the network; without it, the whole prefix.
            logits = self.logits(step_input if use_cache else tokens, cache)[:, -1].double()
            probs = nucleus(top_k_only(torch.softmax(logits / temperature, dim=-1), top_k), top_p)
            next_token = sample_categorical(probs, generator)
            tokens = torch.cat((tokens, next_token[:, None]), dim=1)
            step_input = next_token[:, None]
        return tokens[:, 1:]
