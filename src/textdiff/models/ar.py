"""AR: a causal transformer trained on next-token cross-entropy (the baseline)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone import Backbone, BackboneConfig, init_weights
from .base import StudyModel, sample_categorical


class AutoregressiveLM(StudyModel):
    nll_kind = "exact"
    accuracy_definition = "next-token argmax accuracy over all validation tokens"

    def __init__(self, vocab_size: int, backbone: BackboneConfig, bos_id: int, tie_embeddings: bool = True):
        super().__init__()
        self.bos_id = bos_id
        self.embed = nn.Embedding(vocab_size, backbone.d_model)
        self.backbone = Backbone(backbone)
        self.head = nn.Linear(backbone.d_model, vocab_size, bias=False)
        init_weights(self)
        if tie_embeddings:  # as in GPT-2 and MDLM's AR baseline
            self.head.weight = self.embed.weight

    def logits(self, tokens: torch.Tensor, cache=None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        return self.head(self.backbone(self.embed(tokens), positions, causal=True, cache=cache))

    def _inputs(self, rows: torch.Tensor) -> torch.Tensor:
        # A BOS in front lets every one of the L tokens of a row be predicted, the first from BOS alone.
        bos = torch.full_like(rows[:, :1], self.bos_id)
        return torch.cat((bos, rows[:, :-1]), dim=1)

    def training_loss(self, rows, generator):
        logits = self.logits(self._inputs(rows))
        return F.cross_entropy(logits.flatten(0, 1).float(), rows.flatten())

    @torch.no_grad()
    def validation_sums(self, rows, generator):
        logits = self.logits(self._inputs(rows)).float()
        nll = F.cross_entropy(logits.flatten(0, 1), rows.flatten(), reduction="sum")
        correct = (logits.argmax(-1) == rows).sum()
        return {"nll": nll.item(), "tokens": rows.numel(), "correct": correct.item(), "predicted": rows.numel()}

    @torch.no_grad()
    def generate(self, batch_size, length, generator, temperature: float = 1.0, use_cache: bool = True):
        tokens = torch.full((batch_size, 1), self.bos_id, dtype=torch.long, device=self.device)
        cache = self.backbone.new_cache() if use_cache else None
        step_input = tokens
        for _ in range(length):
            # With the cache only the newest token goes through the network; without it, the whole prefix.
            logits = self.logits(step_input if use_cache else tokens, cache)[:, -1].double()
            next_token = sample_categorical(torch.softmax(logits / temperature, dim=-1), generator)
            tokens = torch.cat((tokens, next_token[:, None]), dim=1)
            step_input = next_token[:, None]
        return tokens[:, 1:]
