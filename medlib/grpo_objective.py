"""The GRPO objective computed by hand, term by term, and TRL's own loss on the same tensors.

Equations (all three papers cite DeepSeekMath's GRPO):

- advantage: MedGround-R1 Eq. 1, MedVol-R1 Eq. 2, MedReasoner Eq. 13,
  ``A_i = (r_i - mean(r_1..r_G)) / std(r_1..r_G)``;
- importance ratio and clipping: MedGround-R1 Eqs. 2 and 4, MedVol-R1 Eq. 3, per token as in
  MedReasoner Eq. 12, ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``;
- KL penalty: MedGround-R1 Eq. 3, MedVol-R1 Eq. 3, estimated per token with DeepSeekMath's k3
  estimator ``pi_ref / pi_theta - log(pi_ref / pi_theta) - 1`` (docs/grpo.md);
- token aggregation: MedReasoner Eq. 12 (``1/G sum_i 1/|o_i| sum_t``, TRL's ``grpo``) and the
  variants TRL names ``bnpo``, ``dr_grpo`` (Liu et al. 2025) and ``dapo`` (Yu et al. 2025).

:func:`grpo_loss_by_hand` is the objective written out; :func:`trl_grpo_loss_on` runs TRL 1.16's
``GRPOTrainer._generate_and_score_completions`` (advantages) and ``GRPOTrainer._compute_loss``
(loss) on the same numbers, through a tiny bigram language model whose per-token log-probabilities
are set by its weights (:class:`ControlledLogpsLM`), so the two can be compared.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
ADV_EPS = 1e-4
"""TRL's and MedGround-R1's released trainer's ``(r - mean) / (std + 1e-4)``."""


class GRPOInputError(ValueError):
    """Tensors that do not describe a GRPO batch (shapes, group size, mask, log-probabilities)."""


# ----------------------------------------------------------------------------------- the terms
def _nanstd(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Unbiased (Bessel-corrected) standard deviation ignoring NaNs; NaN with fewer than 2 values."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    n = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True) * n / (n - 1)
    var = torch.where(n > 1, var, torch.full_like(var, float("nan")))
    return var.sqrt().squeeze(dim)


def group_advantages(rewards, num_generations: int, scale_rewards: str = "group",
                     eps: float = ADV_EPS) -> torch.Tensor:
    """Group-relative advantages (MedGround-R1 Eq. 1, MedVol-R1 Eq. 2, MedReasoner Eq. 13).

    ``rewards`` holds ``B = n_prompts * G`` values, the G completions of a prompt contiguous.
    ``A_i = (r_i - mean_group) / (s + eps)`` with ``s`` the unbiased std of the group (``"group"``,
    the papers), of the whole batch (``"batch"``), or no division (``"none"``): TRL's
    ``scale_rewards``. NaN rewards (no reward function applied) leave the mean and std and get A = 0.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    if num_generations < 2 or r.numel() % num_generations:
        raise GRPOInputError(f"rewards: {r.numel()} values do not split into groups of num_generations="
                             f"{num_generations} (need G >= 2 and B divisible by G)")
    if scale_rewards not in SCALE_REWARDS:
        raise GRPOInputError(f"scale_rewards: {scale_rewards!r} is not one of {SCALE_REWARDS}")
    groups = r.view(-1, num_generations)
    adv = (groups - torch.nanmean(groups, dim=1, keepdim=True)).reshape(-1)
    if scale_rewards == "group":
        adv = adv / (_nanstd(groups, dim=1).repeat_interleave(num_generations) + eps)
    elif scale_rewards == "batch":
        adv = adv / (_nanstd(r) + eps)
    return torch.nan_to_num(adv, nan=0.0)


def importance_ratio(logps: torch.Tensor, old_logps: torch.Tensor) -> torch.Tensor:
    """Per-token ratio ``pi_theta(o_t) / pi_old(o_t) = exp(logp - old_logp)`` (MedReasoner Eq. 12's
    ``r_{i,t}``; the per-sequence ratio of MedGround-R1 Eq. 2 and MedVol-R1 Eq. 3 taken per token)."""
    return torch.exp(logps - old_logps)


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float = 0.2,
                      eps_high: float | None = None) -> torch.Tensor:
    """``min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)`` per token (MedGround-R1 Eq. 4,
    MedVol-R1 Eq. 3): the objective to maximise. ``advantages`` of shape (B,) broadcast over tokens;
    ``eps_high`` None means symmetric clipping (the papers); DAPO raises it."""
    eps_high = eps_low if eps_high is None else eps_high
    a = advantages.unsqueeze(-1) if advantages.dim() == ratio.dim() - 1 else advantages
    return torch.minimum(ratio * a, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a)


def clipped_mask(ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float = 0.2,
                 eps_high: float | None = None) -> torch.Tensor:
    """Tokens where the clip is active, so the gradient through the ratio is zero: ratio below
    ``1 - eps_low`` with A < 0, or above ``1 + eps_high`` with A > 0 (TRL's ``clip_ratio/region``)."""
    eps_high = eps_low if eps_high is None else eps_high
    a = advantages.unsqueeze(-1) if advantages.dim() == ratio.dim() - 1 else advantages
    return ((ratio < 1 - eps_low) & (a < 0)) | ((ratio > 1 + eps_high) & (a > 0))


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate ``exp(ref - logp) - (ref - logp) - 1`` (DeepSeekMath's
    estimator for the KL term of MedGround-R1 Eq. 3 / MedVol-R1 Eq. 3): unbiased for tokens drawn from
    pi_theta, never negative, 0 iff the two log-probabilities agree."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str = "grpo",
              max_completion_length: int | None = None, num_items_in_batch: float | None = None) -> torch.Tensor:
    """Reduce a (B, T) per-token loss to a scalar as TRL's ``loss_type`` does.

    - ``grpo``: mean over tokens of each completion, then over completions (MedReasoner Eq. 12,
      ``1/G sum_i 1/|o_i| sum_t``): every completion weighs the same, whatever its length.
    - ``bnpo``: mean over all tokens of the batch: every token weighs the same.
    - ``dr_grpo``: sum over tokens divided by ``B * max_completion_length`` (a constant).
    - ``dapo``: sum over tokens divided by the tokens of the whole generation batch
      (``num_items_in_batch``; equals ``bnpo`` when the batch is one micro-batch).
    """
    m = mask.to(per_token.dtype)
    if loss_type == "grpo":
        return ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token * m).sum() / m.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        t_max = per_token.size(1) if max_completion_length is None else max_completion_length
        return (per_token * m).sum() / (per_token.size(0) * t_max)
    if loss_type == "dapo":
        n = m.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, dtype=m.dtype)
        return (per_token * m).sum() / n.clamp(min=1.0)
    raise GRPOInputError(f"loss_type: {loss_type!r} is not one of {LOSS_TYPES}")


# ------------------------------------------------------------------------------- the whole loss
@dataclass
class GRPOLossParts:
    """The loss and everything it is made of (tensors of shape (B, T) unless noted)."""

    loss: torch.Tensor
    """Scalar: ``-aggregate(surrogate - beta * kl)``."""
    advantages: torch.Tensor
    """(B,)."""
    ratio: torch.Tensor
    surrogate: torch.Tensor
    """Clipped surrogate per token (to maximise)."""
    kl: torch.Tensor
    """k3 estimate per token (zeros when beta = 0)."""
    per_token_loss: torch.Tensor
    clipped: torch.Tensor
    """Bool: the clip is active."""
    mask: torch.Tensor

    def summary(self) -> dict[str, float]:
        m = self.mask.bool()
        n = max(int(m.sum()), 1)
        return {"loss": float(self.loss.detach()), "kl": float(self.kl.detach()[m].sum()) / n,
                "clip_fraction": float(self.clipped[m].sum()) / n,
                "mean_ratio": float(self.ratio.detach()[m].sum()) / n}


def _check_batch(logps, old_logps, ref_logps, mask, rewards, num_generations, beta):
    logps = torch.as_tensor(logps, dtype=torch.float64)
    if logps.dim() != 2:
        raise GRPOInputError(f"logps: expected shape (B, T), got {tuple(logps.shape)}")
    mask = torch.ones_like(logps) if mask is None else torch.as_tensor(mask, dtype=torch.float64)
    old_logps = logps.detach() if old_logps is None else torch.as_tensor(old_logps, dtype=torch.float64)
    if beta != 0 and ref_logps is None:
        raise GRPOInputError(f"ref_logps: required when beta = {beta} (the KL term needs the reference policy)")
    ref_logps = logps.detach() if ref_logps is None else torch.as_tensor(ref_logps, dtype=torch.float64)
    for name, t in (("old_logps", old_logps), ("ref_logps", ref_logps), ("mask", mask)):
        if t.shape != logps.shape:
            raise GRPOInputError(f"{name}: shape {tuple(t.shape)} differs from logps {tuple(logps.shape)}")
    rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    if rewards.numel() != logps.size(0):
        raise GRPOInputError(f"rewards: {rewards.numel()} values for {logps.size(0)} completions")
    m = mask.bool()
    for name, t in (("logps", logps), ("old_logps", old_logps), ("ref_logps", ref_logps)):
        if not torch.isfinite(t[m]).all() or (t[m] > 0).any():
            raise GRPOInputError(f"{name}: log-probabilities of unmasked tokens must be finite and <= 0")
    return logps, old_logps, ref_logps, mask, rewards


def grpo_loss_by_hand(logps, old_logps, ref_logps, mask, rewards, num_generations: int, beta: float = 0.04,
                      eps: float = 0.2, loss_type: str = "grpo", scale_rewards: str = "group", *,
                      eps_high: float | None = None, max_completion_length: int | None = None,
                      kl_ratio_correction: bool = False, adv_eps: float = ADV_EPS) -> GRPOLossParts:
    """The GRPO loss of MedGround-R1 Eq. 4 / MedVol-R1 Eq. 3, per token as in MedReasoner Eq. 12.

    ``logps``, ``old_logps``, ``ref_logps``, ``mask``: (B, T) per-token log-probabilities of the
    completions under pi_theta, pi_old and pi_ref, and 1 for real tokens; ``old_logps`` None means
    on-policy (ratio 1, the gradient is still that of the ratio); ``ref_logps`` may be None when
    ``beta = 0``. ``rewards``: (B,), groups of ``num_generations`` contiguous. ``eps``: clip range
    (``eps_high`` for the upper side when given). ``kl_ratio_correction``: multiply the KL term by the
    ratio (TRL 1.16's ``use_bias_correction_kl``, default True there; not in the papers, so False
    here). Computed in float64; gradients flow to ``logps`` when it requires them.
    """
    logps, old_logps, ref_logps, mask, rewards = _check_batch(logps, old_logps, ref_logps, mask, rewards,
                                                              num_generations, beta)
    adv = group_advantages(rewards, num_generations, scale_rewards, adv_eps)
    ratio = importance_ratio(logps, old_logps)
    surrogate = clipped_surrogate(ratio, adv, eps, eps_high)
    kl = k3_kl(logps, ref_logps) if beta != 0 else torch.zeros_like(logps)
    if kl_ratio_correction:
        kl = kl * ratio
    per_token_loss = -(surrogate - beta * kl)
    loss = aggregate(per_token_loss, mask, loss_type, max_completion_length)
    return GRPOLossParts(loss=loss, advantages=adv, ratio=ratio, surrogate=surrogate, kl=kl,
                         per_token_loss=per_token_loss, clipped=clipped_mask(ratio, adv, eps, eps_high), mask=mask)


# -------------------------------------------------------------- a model with chosen log-probs
class _Embedding(nn.Module):
    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(weight, freeze=False)

    def forward(self, input_ids=None, attention_mask=None, **_):
        from transformers.modeling_outputs import BaseModelOutput

        return BaseModelOutput(last_hidden_state=self.embed(input_ids))


class ControlledLogpsLM(nn.Module):
    """A bigram language model whose weights encode chosen per-token log-probabilities.

    Every position of every sequence has its own token id, so the next-token distribution after
    token ``x`` can be set freely: the embedding row of ``x`` (hidden size = vocabulary size, the LM
    head the identity) puts logit ``a`` on the next token and 0 on the ``V - 1`` others, with
    ``a = logp + log(V - 1) - log(1 - exp(logp))``, so ``log softmax = logp`` exactly. It is a real
    causal LM for TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``): the hidden state
    at position p scores token p + 1.
    """

    is_gradient_checkpointing = False

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_logps: torch.Tensor):
        super().__init__()
        from transformers import PretrainedConfig

        vocab = int(input_ids.max()) + 1
        c = completion_logps.size(1)
        weight = torch.zeros(vocab, vocab, dtype=torch.float64)
        for b in range(input_ids.size(0)):
            for j in range(c):
                p = input_ids.size(1) - c + j  # position of completion token j
                if attention_mask[b, p]:
                    lp = float(completion_logps[b, j])
                    weight[input_ids[b, p - 1], input_ids[b, p]] = lp + math.log(vocab - 1) - math.log(-math.expm1(lp))
        self.config = PretrainedConfig()
        self.backbone = _Embedding(weight.float())
        self.lm_head = nn.Linear(vocab, vocab, bias=False)
        with torch.no_grad():
            self.lm_head.weight.copy_(torch.eye(vocab))
        self.lm_head.weight.requires_grad_(False)

    @property
    def base_model(self):
        return self.backbone

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, attention_mask=None, **_):
        return self.lm_head(self.backbone(input_ids).last_hidden_state)


def toy_token_ids(mask: torch.Tensor, prompt_len: int = 1) -> tuple[list[list[int]], list[list[int]]]:
    """Prompt and completion token ids with a distinct id for every (row, position); 0 is padding."""
    b, t = mask.shape
    prompts, completions = [], []
    for i in range(b):
        base = 1 + i * (prompt_len + t)
        prompts.append(list(range(base, base + prompt_len)))
        completions.append(list(range(base + prompt_len, base + prompt_len + int(mask[i].sum()))))
    return prompts, completions


def _check_right_padded(mask: torch.Tensor) -> None:
    lengths = mask.sum(-1)
    expect = (torch.arange(mask.size(1)).unsqueeze(0) < lengths.unsqueeze(1)).to(mask.dtype)
    if not torch.equal(mask, expect) or (lengths == 0).any():
        raise GRPOInputError("mask: each row must be 1 for a non-empty prefix and 0 after it (right padding), "
                             "as TRL pads completions")


# --------------------------------------------------------------------------------- TRL's loss
def _trl_harness_class():
    from accelerate import Accelerator
    from transformers import TrainerState
    from trl import GRPOTrainer

    class TRLLossHarness(GRPOTrainer):
        """GRPOTrainer with only the state ``_generate_and_score_completions`` and ``_compute_loss``
        read, set from a real ``GRPOConfig`` the way ``GRPOTrainer.__init__`` sets it; generation is
        replaced by fixed completions (``_generate``), everything after it is TRL's code."""

        def __init__(self, args, model, ref_model, prompt_ids, completion_ids, reward_func):
            self.args, self.model, self.ref_model = args, model, ref_model
            self.accelerator = Accelerator(cpu=True)
            self.state = TrainerState()
            self._fixed = (prompt_ids, completion_ids)
            self._tokenizer = type("Tok", (), {"pad_token_id": 0})()
            for name in ("loss_type", "scale_rewards", "importance_sampling_level", "off_policy_mask_threshold",
                         "mask_truncated_completions", "top_entropy_quantile", "max_completion_length",
                         "num_generations", "num_iterations", "beta", "temperature", "use_vllm", "pad_to_multiple_of",
                         "vllm_importance_sampling_correction", "multi_objective_aggregation", "log_multimodal",
                         "entropy_coef", "use_adaptive_entropy"):
                setattr(self, name, getattr(args, name))
            self.epsilon_low = args.epsilon
            self.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
            self._entropy_bonus_enabled = self.entropy_coef != 0.0 or self.use_adaptive_entropy
            self.aux_loss_enabled = False
            self.current_gradient_accumulation_steps = args.gradient_accumulation_steps
            self.reward_funcs, self.reward_func_names = [reward_func], [reward_func.__name__]
            self.reward_processing_classes = [None]
            self.reward_weights = torch.ones(1)
            self.environment_factories = self.environments = self.tools = None
            self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
            n = args.generation_batch_size
            self._logs = {"images": deque(maxlen=n), "prompt": deque(maxlen=n), "completion": deque(maxlen=n),
                          "rewards": defaultdict(lambda: deque(maxlen=n)), "advantages": deque(maxlen=n),
                          "extra": defaultdict(lambda: deque(maxlen=n))}
            self._pending_extra_logs, self._pending_metrics = defaultdict(list), defaultdict(list)

        def _generate(self, prompts):
            prompt_ids, completion_ids = self._fixed
            completions = [f"completion {i}" for i in range(len(completion_ids))]
            return prompt_ids, completion_ids, None, completions, None, {}, None, []

    return TRLLossHarness


def trl_grpo_loss_on(logps, old_logps, ref_logps, mask, rewards, num_generations: int, beta: float = 0.04,
                     eps: float = 0.2, loss_type: str = "grpo", scale_rewards: str = "group", *,
                     eps_high: float | None = None, max_completion_length: int | None = None,
                     kl_ratio_correction: bool = False) -> dict[str, Any]:
    """TRL 1.16's GRPOTrainer loss on the same tensors as :func:`grpo_loss_by_hand`.

    Builds a real ``GRPOConfig`` (``use_bias_correction_kl = kl_ratio_correction``); policy, old
    policy and reference are :class:`ControlledLogpsLM` models behind TRL's fused LM head
    (``add_fused_lm_head``, float32 as in training). Rewards reach TRL through a reward function
    reading a dataset column. TRL's ``_generate_and_score_completions`` computes the advantages,
    the reference log-probs and, off-policy, the old log-probs (``num_iterations = 2`` makes it do
    so); ``_compute_loss`` computes the loss, which is then back-propagated.

    Returns ``loss``; TRL's ``advantages``; ``logps``, the per-token log-probs TRL read from the
    policy; ``grad_logps``, d loss / d logps recovered from the policy's embedding gradient
    (``dL/dW[x_p, x_{p+1}] = dL/dlogp * (1 - p)``); ``metrics``, what TRL logged (``kl``,
    ``clip_ratio/*``).
    """
    from trl import GRPOConfig
    from trl.trainer.utils import add_fused_lm_head

    logps, old_in, ref_in, mask, rewards_t = _check_batch(logps, old_logps, ref_logps, mask, rewards,
                                                          num_generations, beta)
    if loss_type not in LOSS_TYPES:
        raise GRPOInputError(f"loss_type: {loss_type!r} is not one of {LOSS_TYPES}")
    _check_right_padded(mask)
    m = mask.bool()
    for name, t in (("logps", logps), ("old_logps", old_in), ("ref_logps", ref_in)):
        if (t[m] >= 0).any():
            raise GRPOInputError(f"{name}: a token with log-probability 0 cannot be encoded in a bigram model")
    b, t = logps.shape
    prompt_ids, completion_ids = toy_token_ids(mask)
    ids = torch.zeros(b, 1 + t, dtype=torch.long)
    att = torch.zeros(b, 1 + t, dtype=torch.long)
    for i in range(b):
        seq = prompt_ids[i] + completion_ids[i]
        ids[i, :len(seq)], att[i, :len(seq)] = torch.tensor(seq), 1

    def lm(lp):
        model = ControlledLogpsLM(ids, att, lp.detach())
        add_fused_lm_head(model, temperature=1.0, outputs=("log_probs", "entropy"))
        return model.train()

    policy = lm(logps)
    generating = lm(old_in) if old_logps is not None else policy
    reference = lm(ref_in) if beta != 0 else None

    def toy_reward(completions, toy_reward, **kwargs):
        return [None if math.isnan(r) else float(r) for r in toy_reward]

    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' renamed gradient_checkpointing argument
        args = GRPOConfig(output_dir=out, use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=b,
                          num_generations=num_generations, gradient_accumulation_steps=1,
                          num_iterations=1 if old_logps is None else 2, beta=beta, epsilon=eps,
                          epsilon_high=eps_high, loss_type=loss_type, scale_rewards=scale_rewards,
                          max_completion_length=t if max_completion_length is None else max_completion_length,
                          temperature=1.0, use_bias_correction_kl=kl_ratio_correction)
        trainer = _trl_harness_class()(args, generating, reference, prompt_ids, completion_ids, toy_reward)
        batch = [{"prompt": "toy prompt", "toy_reward": float(r)} for r in rewards_t]
        inputs = trainer._generate_and_score_completions(batch)
        loss = trainer._compute_loss(policy, inputs)
        loss.backward()
    with torch.no_grad():
        trl_logps, _, _ = trainer._get_per_token_logps_and_entropies(
            policy, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1), t)
    grad_w = policy.backbone.embed.weight.grad.double()
    trl_logps = trl_logps.double()
    grad = torch.zeros(b, t, dtype=torch.float64)
    for i, j in m.nonzero().tolist():
        grad[i, j] = grad_w[ids[i, j], ids[i, j + 1]] / -torch.expm1(trl_logps[i, j])
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    return {"loss": loss.detach().double(), "advantages": inputs["advantages"].double(), "logps": trl_logps,
            "grad_logps": grad, "metrics": metrics}


# ----------------------------------------------------------------------------- for the notebook
TOY_REWARDS = (1.0, 0.0, 0.0, 1.0, 1.8, 1.0, 0.2, 1.0)
"""Two prompts x G = 4: binary hits (format + spatial style) and graded sums (with an IoU-like term)."""
TOY_LENGTHS = (6, 2, 5, 3, 6, 4, 2, 5)


def toy_batch(seed: int = 0, rewards=TOY_REWARDS, lengths=TOY_LENGTHS, num_generations: int = 4,
              max_move: float = 0.4) -> dict[str, Any]:
    """A small GRPO batch: completions of the given ``lengths`` (right-padded), their ``rewards``,
    and per-token log-probs under pi_old (uniform in [-2.05, -0.05]), pi_theta (pi_old moved by up
    to +-``max_move`` nats per token, so some ratios leave [0.8, 1.2]) and pi_ref (moved by up to
    +-0.3). Log-probs of padding are 0."""
    if len(rewards) != len(lengths):
        raise GRPOInputError(f"rewards ({len(rewards)}) and lengths ({len(lengths)}) must have one value per completion")
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    mask = (torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).double()
    old = -torch.rand(b, t, generator=g, dtype=torch.float64) * 2.0 - 0.05
    logps = (old + (torch.rand(b, t, generator=g, dtype=torch.float64) - 0.5) * 2 * max_move).clamp(max=-0.01)
    ref = (old + (torch.rand(b, t, generator=g, dtype=torch.float64) - 0.5) * 0.6).clamp(max=-0.01)
    return {"logps": logps * mask, "old_logps": old * mask, "ref_logps": ref * mask, "mask": mask,
            "rewards": torch.tensor(rewards, dtype=torch.float64), "num_generations": num_generations}


def compare_with_trl(batch: dict, loss_types=LOSS_TYPES, betas=(0.0, 0.04), kl_ratio_corrections=(False, True),
                     policies=("off", "on"), scale_rewards: str = "group", eps: float = 0.2,
                     eps_high: float | None = None) -> list[dict[str, Any]]:
    """Hand loss vs TRL's loss on ``batch`` for every combination (``policies``: "off" uses the
    batch's ``old_logps``, "on" sets pi_old = pi_theta; the KL ratio correction only where beta > 0).
    Each row: both losses and their difference, and the largest differences of d loss / d logps,
    advantages and the log-probs TRL read back."""
    rows = []
    m = batch["mask"].bool()
    for lt in loss_types:
        for beta in betas:
            for corr in (kl_ratio_corrections if beta != 0 else (False,)):
                for pol in policies:
                    common = {k: batch[k] for k in ("ref_logps", "mask", "rewards", "num_generations")}
                    common.update(old_logps=batch["old_logps"] if pol == "off" else None, beta=beta, eps=eps,
                                  loss_type=lt, scale_rewards=scale_rewards, eps_high=eps_high,
                                  kl_ratio_correction=corr)
                    lp = batch["logps"].clone().requires_grad_(True)
                    hand = grpo_loss_by_hand(lp, **common)
                    hand.loss.backward()
                    trl = trl_grpo_loss_on(batch["logps"], **common)
                    s = hand.summary()
                    rows.append({
                        "loss_type": lt, "beta": beta, "kl_ratio_correction": corr, "policy": pol,
                        "scale_rewards": scale_rewards, "loss_by_hand": s["loss"], "loss_trl": float(trl["loss"]),
                        "abs_diff": abs(s["loss"] - float(trl["loss"])),
                        "max_grad_diff": float((lp.grad - trl["grad_logps"])[m].abs().max()),
                        "max_adv_diff": float((hand.advantages - trl["advantages"]).abs().max()),
                        "max_logp_diff": float((batch["logps"] - trl["logps"])[m].abs().max()),
                        "kl_by_hand": s["kl"], "kl_trl": trl["metrics"].get("kl", 0.0),
                        "clip_fraction_by_hand": s["clip_fraction"],
                        "clip_fraction_trl": trl["metrics"]["clip_ratio/region_mean"]})
    return rows


def token_weights(mask, loss_type: str = "grpo", max_completion_length: int | None = None) -> torch.Tensor:
    """Weight of each token's loss in the aggregated loss, ``d aggregate / d per_token_loss`` (B, T):
    ``1 / (B |o_i|)`` for grpo, ``1 / sum |o|`` for bnpo and dapo, ``1 / (B T_max)`` for dr_grpo."""
    mask = torch.as_tensor(mask, dtype=torch.float64)
    x = torch.zeros_like(mask, requires_grad=True)
    aggregate(x, mask, loss_type, max_completion_length).backward()
    return x.grad


def with_provenance(rows: list[dict[str, Any]], seed: int, profile: str) -> list[dict[str, Any]]:
    """Rows with the seed, profile, git commit and torch / trl versions added (every results file records them)."""
    from .provenance import provenance

    p = provenance(seed=seed, profile=profile)
    extra = {"seed": seed, "profile": profile, "git_commit": p["git_commit"],
             "torch": p["versions"]["torch"], "trl": p["versions"]["trl"]}
    return [{**r, **extra} for r in rows]


def kl_estimators_vs_exact(shifts=None, vocab: int = 16, n_samples: int = 4000,
                           seed: int = 0) -> list[dict[str, float]]:
    """Monte-Carlo check of the per-token KL estimators: tokens x ~ pi_theta over a ``vocab``-way
    categorical, pi_ref its logits moved by ``shift`` times a fixed direction. Exact
    KL(pi_theta || pi_ref) vs the sample mean and std of k1 = log pi_theta(x) - log pi_ref(x) and of k3."""
    shifts = np.linspace(0.0, 2.0, 11) if shifts is None else shifts
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(vocab, generator=g, dtype=torch.float64)
    direction = torch.randn(vocab, generator=g, dtype=torch.float64)
    rows = []
    for s in shifts:
        lp = torch.log_softmax(z, 0)
        lr = torch.log_softmax(z + float(s) * direction, 0)
        exact = float((lp.exp() * (lp - lr)).sum())
        x = torch.multinomial(lp.exp(), n_samples, replacement=True, generator=g)
        k1 = lp[x] - lr[x]
        k3 = k3_kl(lp[x], lr[x])
        rows.append({"shift": float(s), "exact_kl": exact, "k1_mean": float(k1.mean()), "k1_std": float(k1.std()),
                     "k3_mean": float(k3.mean()), "k3_std": float(k3.std())})
    return rows


PAPERS_OBJECTIVE = {
    "loss_type": "grpo",                 # MedReasoner Eq. 12: 1/G sum_i 1/|o_i| sum_t
    "scale_rewards": "group",            # MedGround-R1 Eq. 1, MedVol-R1 Eq. 2: the group's std
    "epsilon_high": None,                # MedGround-R1 Eq. 4: one symmetric clip range
    "use_bias_correction_kl": False,     # MedGround-R1 Eq. 3, MedVol-R1 Eq. 3: beta * KL, no ratio on it
}
"""The settings the papers' equations fix (the rest are per-paper hyper-parameters in the configs)."""


def paper_settings_vs_trl_defaults(papers=("medground", "medreasoner", "medvol")) -> list[dict[str, Any]]:
    """Per GRPO setting: TRL 1.16's ``GRPOConfig`` default, what the papers' equations fix
    (:data:`PAPERS_OBJECTIVE`), and what medlib's GRPO runner passes to ``GRPOConfig`` for each
    paper's ``configs/<paper>/full.yaml`` (``medlib.train.grpo.grpo_kwargs``; "(TRL default)" when
    it passes nothing); docs/grpo.md#trls-defaults-differ. Values are read, not typed here."""
    import dataclasses

    from trl import GRPOConfig

    from .paths import repo_path
    from .train.common import as_config
    from .train.grpo import grpo_kwargs

    fields = ("loss_type", "scale_rewards", "beta", "epsilon", "epsilon_high", "use_bias_correction_kl",
              "num_generations", "learning_rate", "max_completion_length", "temperature", "num_iterations")
    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig) if f.name in fields}
    passed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for paper in papers:
            cfg = as_config(repo_path(f"configs/{paper}/full.yaml"))
            passed[paper] = grpo_kwargs(cfg, Path(tmp), "cuda", [])
            passed[paper]["num_generations"] = cfg.grpo.num_generations
    unset = "(TRL default)"
    return [{"setting": f, "trl_default": defaults.get(f), "papers_objective": PAPERS_OBJECTIVE.get(f, "per paper"),
             **{p: passed[p].get(f, unset) for p in papers}} for f in fields]
