"""What every generator of the study is: one small interface, and everything else about the model.

The trainer calls `training_loss`, the evaluator `validation_sums` and `generate`; neither
knows which model it holds. Each model class also owns what the rest of the study needs to
know about it, so that adding a model touches its own file (and params.yaml and dvc.yaml)
and nothing else:

- `card` (a ModelCard): `name`, `display_name` (its params group, stage suffix and output directory; how
  tables name it) and what its numbers mean, set on the class as attributes of the same names;
- `Params` and `parse_params`: its params group as a dataclass, each value checked;
- `parse_sampling`, `parse_validation`: its `sample.<name>` settings (generate() keywords, and the
  options of its validation figure);
- `nll_kind`, `accuracy_definition`, `loss_meaning`: what its numbers mean, in words;
- `training_flops_per_row`: its cost, for MFU;
- `diagnostics`: optional extra measurements that evaluation records.

models/__init__.py keeps the registry and builds a model from the spec stored beside its weights.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from ..backbone import Backbone, BackboneConfig, init_weights
from ..checks import boolean, choice, integer, number, section
from ..flops import transformer_training_flops

#: Meaning of each kind of validation NLL (a model's `nll_kind`), for the report and metrics.
PERPLEXITY_MEANING = {
    "exact": "exp(validation NLL per token): an exact likelihood",
    "bound": "exp(NELBO per token), averaged over several t per row: an upper bound on the true perplexity",
    "denoising cross-entropy": "exp(cross-entropy of the denoiser at random t): not a likelihood",
}


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a model is called and what its numbers mean; StudyModel sets each field as a class attribute."""
    name: str  # params group, stage suffix (train@<name>) and output directory (models/<name>)
    display_name: str  # how tables and plots name it
    loss_meaning: str  # what training_loss is, in words (the training-loss plot's legend)
    nll_kind: str  # what validation_sums' NLL is: a key of PERPLEXITY_MEANING
    accuracy_definition: str  # what validation_sums' accuracy counts, in words for the report


class StudyModel(nn.Module):
    #: Each accuracy that validation reports: metric key -> (numerator, denominator) keys of validation_sums.
    validation_accuracies: ClassVar[dict[str, tuple[str, str]]] = {"accuracy": ("correct", "predicted")}
    #: Params group, stage suffix (train@<name>) and output directory (models/<name>).
    name: ClassVar[str]
    #: How tables and plots name the model.
    display_name: ClassVar[str]
    #: What `training_loss` is, in words (the training-loss plot's legend).
    loss_meaning: ClassVar[str]
    #: What `validation_sums`' NLL is: a key of PERPLEXITY_MEANING.
    nll_kind: ClassVar[str]
    #: What `validation_sums`' accuracy counts, in words for the report.
    accuracy_definition: ClassVar[str]
    #: The dataclass of its params group; its fields are the model's constructor keywords.
    Params: ClassVar[type]
    #: Named generate() options that benchmarks/generation.py times against each other (empty: the default only),
    #: and whether it also compares the first two at several sample lengths.
    benchmark_cases: ClassVar[dict[str, dict]] = {}
    benchmark_by_length: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "card" in cls.__dict__:
            for field in dataclasses.fields(ModelCard):
                setattr(cls, field.name, getattr(cls.card, field.name))

    # --- params ------------------------------------------------------------------------------
    @classmethod
    def parse_params(cls, raw: dict, vocab_size: int):
        """Its params (a `Params`) from the whole params.yaml mapping, every value checked."""
        raise NotImplementedError

    @classmethod
    def parse_sampling(cls, group: dict, prefix: str) -> dict:
        """generate()'s keywords at the default sampling setting, from its `sample.<name>` group."""
        return {"temperature": number(group, "temperature", prefix, 0, 100, low_open=True)}

    @classmethod
    def parse_validation(cls, group: dict, prefix: str) -> dict:
        """validation_sums()' keywords, from its `sample.<name>` group."""
        return {}

    @classmethod
    def from_spec(cls, spec: dict) -> "StudyModel":
        """The model a spec (see models.model_spec) describes, freshly initialised."""
        backbone = BackboneConfig(spec["d_model"], spec["n_layers"], spec["n_heads"], spec["d_ff"],
                                  max_positions=spec["seq_len"])
        # A field added to a model's params since a spec was written takes its default (the behaviour before it).
        options = {field.name: spec[field.name] if field.name in spec or field.default is dataclasses.MISSING
                   else field.default for field in dataclasses.fields(cls.Params)}
        return cls(spec["vocab_size"], backbone, **options)

    # --- the study interface -----------------------------------------------------------------
    def training_loss(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Scalar loss to minimise for a batch of token rows [B, L]."""
        raise NotImplementedError

    @torch.no_grad()
    def validation_sums(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per row of a batch, each a tensor [B]: nll (nats over the row), tokens (its NLL denominator), and
        the numerator and denominator of each of `validation_accuracies` (per row, so that evaluation can
        state a standard error over rows)."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, batch_size: int, length: int, generator: torch.Generator, **sampling) -> torch.Tensor:
        """Token ids [batch_size, length] drawn from the model."""
        raise NotImplementedError

    def training_flops_per_row(self, seq_len: int) -> float:
        """FLOPs of one training row of seq_len tokens (forward and backward), for MFU."""
        raise NotImplementedError

    def on_training_progress(self, progress: float):
        """Called by the trainer before each step with the fraction of training done (for curricula)."""

    def diagnostics(self, rows: torch.Tensor, generator, batch_size: int, sampling: dict, length: int):
        """Extra measurements evaluation records under metrics' "diagnostics" (None: none)."""
        return None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class TokenModel(StudyModel):
    """The skeleton of a model whose positions hold one token each (AR, MDLM): a token embedding,
    the shared backbone, and an output head tied to the embedding."""

    def __init__(self, vocab_size: int, backbone: BackboneConfig, tie_embeddings: bool):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, backbone.d_model)
        self.backbone = Backbone(backbone)
        self.head = nn.Linear(backbone.d_model, vocab_size, bias=False)
        init_weights(self)
        if tie_embeddings:  # as in GPT-2 and MDLM
            self.head.weight = self.embed.weight

    def hidden(self, tokens: torch.Tensor, start: int = 0, **attention) -> torch.Tensor:
        """The backbone's output [B, N, d_model] for tokens [B, N] at positions start..start+N-1."""
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        return self.backbone(self.embed(tokens), positions, **attention)

    def logits(self, tokens: torch.Tensor, start: int = 0, **attention) -> torch.Tensor:
        """Output logits [B, N, V] of tokens [B, N] at positions start..start+N-1."""
        return self.head(self.hidden(tokens, start, **attention))

    def training_flops_per_row(self, seq_len: int) -> float:
        return transformer_training_flops(self.backbone, self.head.weight.numel(), seq_len, seq_len)


def sampling_steps(group: dict, prefix: str) -> int:
    """A diffusion sampler's default number of steps (network calls)."""
    return integer(group, "steps", prefix, high=100000)


def nucleus(probs: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """probs [..., V] restricted to each row's nucleus (Holtzman et al. 2020): the fewest most probable tokens
    whose mass reaches top_p (the most probable always kept), the rest zeroed; not renormalised (the
    categorical draw does not need it). top_p None: probs unchanged."""
    if top_p is None:
        return probs
    ordered, order = probs.sort(dim=-1, descending=True)
    mass_before = ordered.cumsum(-1) - ordered
    keep_sorted = mass_before < top_p * ordered.sum(-1, keepdim=True)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return probs * keep


def top_k_only(probs: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """probs [..., V] with all but each row's top_k most probable tokens zeroed (None: unchanged)."""
    if top_k is None or top_k >= probs.shape[-1]:
        return probs
    threshold = probs.topk(top_k, dim=-1).values[..., -1:]
    return probs * (probs >= threshold)


def top_p_option(group: dict, prefix: str):
    """A sampler's `top_p` (null: off): the nucleus mass, in (0, 1]."""
    return number(group, "top_p", prefix, 0, 1, low_open=True, optional=True)


def sample_categorical(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of probs [..., V] (need not be normalised), by inverse CDF in float64.

    float32 categorical/Gumbel sampling truncates small probabilities and lowers
    the effective temperature (Zheng et al. 2024), so every sampler of the study
    draws through here.
    """
    probs = probs.to(torch.float64)
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[:-1] + (1,), dtype=torch.float64, generator=generator, device=probs.device)
    index = torch.searchsorted(cdf, u * cdf[..., -1:], right=True)
    return index.squeeze(-1).clamp_(max=probs.shape[-1] - 1)


# --- what the diffusion models share: their noise schedules and how t is drawn ---------------------
class LogLinearSchedule:
    """alpha_t = 1 - t: the MDLM paper's default; MDLM's weight -alpha'_t / (1 - alpha_t) = 1/t."""

    def alpha(self, t):
        return 1 - t

    def alpha_derivative(self, t):
        return -torch.ones_like(t) if isinstance(t, torch.Tensor) else -1.0

    def weight(self, t):
        return 1 / t


class CosineSchedule:
    """alpha_t = cos(pi t / 2); MDLM's weight (pi/2) sin(pi t/2) / (1 - cos(pi t/2))."""

    def alpha(self, t):
        return torch.cos(math.pi / 2 * t)

    def alpha_derivative(self, t):
        return -(math.pi / 2) * torch.sin(math.pi / 2 * t)

    def weight(self, t):
        return (math.pi / 2) * torch.sin(math.pi / 2 * t) / (1 - torch.cos(math.pi / 2 * t))


SCHEDULES = {"loglinear": LogLinearSchedule, "cosine": CosineSchedule}


@dataclasses.dataclass(frozen=True)
class DiffusionParams:
    """The params group of a one-token-per-position diffusion model (MDLM, UDLM)."""
    tie_embeddings: bool
    schedule: str  # a key of SCHEDULES
    t_eps: float  # t is drawn from [t_eps, 1]


class DiffusionModel(TokenModel):
    """What the one-token-per-position diffusion models share: their params group (DiffusionParams, checked
    here), their validation option (t draws per row for the NELBO bound) and their schedule and t_eps."""
    Params = DiffusionParams

    @classmethod
    def parse_params(cls, raw, vocab_size):
        group, prefix = section(raw, cls.name), f"{cls.name}."
        return DiffusionParams(boolean(group, "tie_embeddings", prefix), choice(group, "schedule", prefix, tuple(SCHEDULES)),
                               number(group, "t_eps", prefix, 0, 1, low_open=True, high_open=True))

    @classmethod
    def parse_validation(cls, group, prefix):
        return {"t_draws": integer(group, "valid_t_draws", prefix, high=1000)}

    def __init__(self, vocab_size: int, backbone: BackboneConfig, tie_embeddings: bool, schedule: str, t_eps: float):
        super().__init__(vocab_size, backbone, tie_embeddings)
        self.schedule = SCHEDULES[schedule]()
        self.t_eps = t_eps

    def nelbo_terms(self, rows: torch.Tensor, t: torch.Tensor, generator) -> tuple:
        """(per-row NELBO [B] in nats at times t [B], and what validation needs of the same draw)."""
        raise NotImplementedError

    def training_loss(self, rows, generator):
        """The NELBO per token at t drawn low-discrepancy over the batch."""
        t = low_discrepancy_times(rows.shape[0], self.t_eps, generator, rows.device)
        return self.nelbo_terms(rows, t, generator)[0].sum() / rows.numel()


def low_discrepancy_times(batch_size: int, t_eps: float, generator, device) -> torch.Tensor:
    """One t per row, stratified over [t_eps, 1]: a shared random offset plus i/B (antithetic-style)."""
    offset = torch.rand((), generator=generator, device=device)
    u = (offset + torch.arange(batch_size, device=device) / batch_size) % 1.0
    return t_eps + (1 - t_eps) * u


def averaged_over_t_draws(rows: torch.Tensor, t_draws: int, t_eps: float, generator, terms) -> dict:
    """A diffusion model's validation sums per row: terms(t) -> (NELBO [B], {count name: [B]}) at t drawn
    stratified over t_draws strata of [t_eps, 1] per row; the NELBO averaged over the draws (an upper bound
    on the NLL), each count (hits, predictions) summed over them."""
    nll = torch.zeros(len(rows), dtype=torch.float64, device=rows.device)
    counts = {}
    for draw in range(t_draws):
        u = (torch.rand((rows.shape[0],), generator=generator, device=rows.device) + draw) / t_draws
        nelbo, draw_counts = terms(t_eps + (1 - t_eps) * u)
        nll += nelbo.double() / t_draws
        for name, count in draw_counts.items():
            counts[name] = counts.get(name, 0) + count.long()
    return {"nll": nll, "tokens": torch.full((len(rows),), rows.shape[1], device=rows.device), **counts}
