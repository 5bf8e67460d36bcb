"""The GRPO objective by hand (medlib.grpo_objective) on hand-computed toy numbers, and against
TRL 1.16's own GRPOTrainer code on the same tensors."""

import math

import pytest
import torch

from medlib.grpo_objective import (
    LOSS_TYPES,
    GRPOInputError,
    aggregate,
    clipped_mask,
    clipped_surrogate,
    group_advantages,
    grpo_loss_by_hand,
    importance_ratio,
    k3_kl,
    paper_settings_vs_trl_defaults,
    token_weights,
    toy_batch,
    trl_grpo_loss_on,
)

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------ advantages
def test_binary_group_gives_pm_0866_with_unbiased_std():
    # rewards [1, 0, 0, 1]: mean 0.5, deviations +-0.5, unbiased variance 4 * 0.25 / 3 = 1/3,
    # std = 0.57735, A = +-0.5 / 0.57735 = +-0.86603 (sqrt(3)/2). A population std (0.5) would give +-1.
    a = group_advantages([1, 0, 0, 1], 4, eps=0.0)
    assert torch.allclose(a, torch.tensor([1, -1, -1, 1], dtype=torch.float64) * math.sqrt(3) / 2, atol=1e-12)
    # with TRL's / MedGround-R1's eps = 1e-4: 0.5 / (0.57735 + 1e-4) = 0.865875
    assert group_advantages([1, 0, 0, 1], 4)[0].item() == pytest.approx(0.8658754297607016, abs=1e-12)


def test_scale_rewards_variants():
    r = [1, 0, 0, 1, 3, 1, 2, 2]
    # group 2: mean 2, deviations [1, -1, 0, 0], unbiased var 2/3, std 0.81650 -> A = [1.22474, -1.22474, 0, 0]
    g = group_advantages(r, 4, "group", eps=0.0)
    assert torch.allclose(g[4:], torch.tensor([1.224744871391589, -1.224744871391589, 0, 0], dtype=torch.float64))
    # batch: deviations from each GROUP mean, divided by the std of all 8 rewards: mean 1.25,
    # squared deviations sum to 7.5, unbiased var 7.5 / 7, std 1.03510 -> 0.5 / 1.0351 = 0.48305, 1 / 1.0351 = 0.96609
    b = group_advantages(r, 4, "batch", eps=0.0)
    assert torch.allclose(b, torch.tensor([0.48304589153964794, -0.48304589153964794, -0.48304589153964794,
                                           0.48304589153964794, 0.9660917830792959, -0.9660917830792959, 0, 0],
                                          dtype=torch.float64))
    # none: only the group mean is removed
    assert group_advantages(r, 4, "none").tolist() == [0.5, -0.5, -0.5, 0.5, 1.0, -1.0, 0.0, 0.0]


def test_constant_group_and_unscored_completion():
    # equal rewards: deviations 0, std 0 -> 0 / (0 + eps) = 0, the group carries no signal
    assert group_advantages([2, 2, 2, 2], 4).abs().max().item() == 0.0
    # NaN (no reward applied) leaves the statistics: mean of [1, 0, 1] = 2/3, unbiased std
    # sqrt((1/9 + 4/9 + 1/9) / 2) = 0.57735 -> A = [0, 0.57735, -1.15470, 0.57735]
    a = group_advantages([float("nan"), 1, 0, 1], 4, eps=0.0)
    assert torch.allclose(a, torch.tensor([0, 1 / math.sqrt(3), -2 / math.sqrt(3), 1 / math.sqrt(3)],
                                          dtype=torch.float64))


@pytest.mark.parametrize("kwargs, field", [
    ({"rewards": [1, 0, 1], "num_generations": 2}, "rewards"),
    ({"rewards": [1, 0], "num_generations": 1}, "rewards"),
    ({"rewards": [1, 0], "num_generations": 2, "scale_rewards": "std"}, "scale_rewards"),
])
def test_advantage_input_errors(kwargs, field):
    with pytest.raises(GRPOInputError, match=field):
        group_advantages(**kwargs)


# ---------------------------------------------------------------------------- ratio and clipping
def test_ratio_and_clipping_cases():
    ratio = importance_ratio(torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1])), torch.zeros(5))
    assert torch.allclose(ratio, torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1]))
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    # rho 1.5, A +1: min(1.5, 1.2) = 1.2 (clipped);   rho 1.5, A -1: min(-1.5, -1.2) = -1.5 (kept)
    # rho 0.5, A +1: min(0.5, 0.8) = 0.5 (kept);      rho 0.5, A -1: min(-0.5, -0.8) = -0.8 (clipped)
    # rho 1.1 inside [0.8, 1.2]: 1.1
    s = clipped_surrogate(ratio, adv, 0.2)
    assert torch.allclose(s, torch.tensor([1.2, -1.5, 0.5, -0.8, 1.1]))
    assert clipped_mask(ratio, adv, 0.2).tolist() == [True, False, False, True, False]
    # clipped tokens pass no gradient to the ratio, the others pass A
    r = ratio.clone().requires_grad_(True)
    clipped_surrogate(r, adv, 0.2).sum().backward()
    assert torch.allclose(r.grad, torch.tensor([0.0, -1.0, 1.0, 0.0, 1.0]))
    # DAPO's asymmetric clip: eps_high 0.28 keeps rho 1.25 with A > 0 (1.25), symmetric 0.2 caps it at 1.2
    one = torch.tensor([1.25])
    assert clipped_surrogate(one, torch.tensor([1.0]), 0.2, 0.28).item() == pytest.approx(1.25)
    assert clipped_surrogate(one, torch.tensor([1.0]), 0.2).item() == pytest.approx(1.2)


# ------------------------------------------------------------------------------------------- KL
def test_k3_known_pair_and_properties():
    # pi_theta = 0.5, pi_ref = 0.25: d = log(0.25 / 0.5) = -0.69315, k3 = 0.5 + 0.69315 - 1 = 0.19315
    assert k3_kl(torch.tensor(math.log(0.5)), torch.tensor(math.log(0.25))).item() == pytest.approx(0.1931471805599454)
    assert k3_kl(torch.tensor(-1.3), torch.tensor(-1.3)).item() == 0.0
    d = torch.linspace(-5, 5, 101, dtype=torch.float64)
    assert (k3_kl(torch.zeros_like(d), d) >= 0).all()
    # unbiased: E_{x ~ p}[k3] = sum_x q(x) - sum_x p log(q / p) - 1 = KL(p || q) exactly
    p = torch.softmax(torch.tensor([0.3, -1.0, 2.0, 0.1], dtype=torch.float64), 0)
    q = torch.softmax(torch.tensor([1.0, 0.2, -0.5, 0.0], dtype=torch.float64), 0)
    exact = (p * (p.log() - q.log())).sum()
    assert (p * k3_kl(p.log(), q.log())).sum().item() == pytest.approx(exact.item(), abs=1e-12)


# ---------------------------------------------------------------------------------- aggregation
def test_loss_type_aggregation():
    per_token = torch.tensor([[1.0, 1.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    # grpo: per-completion means (1 and 3), then their mean = 2
    assert aggregate(per_token, mask, "grpo").item() == pytest.approx(2.0)
    # bnpo / dapo: all 6 tokens weigh the same: (2 + 12) / 6 = 2.3333
    assert aggregate(per_token, mask, "bnpo").item() == pytest.approx(14 / 6)
    assert aggregate(per_token, mask, "dapo").item() == pytest.approx(14 / 6)
    assert aggregate(per_token, mask, "dapo", num_items_in_batch=12).item() == pytest.approx(14 / 12)
    # dr_grpo: sum / (B * T_max) = 14 / 8, or 14 / 16 with max_completion_length 8
    assert aggregate(per_token, mask, "dr_grpo").item() == pytest.approx(1.75)
    assert aggregate(per_token, mask, "dr_grpo", max_completion_length=8).item() == pytest.approx(0.875)
    with pytest.raises(GRPOInputError, match="loss_type"):
        aggregate(per_token, mask, "ppo")
    # a token of the 2-token completion weighs 1 / (2 * 2) under grpo, 1 / 6 under bnpo
    w = token_weights(mask, "grpo")
    assert w[0, 0].item() == pytest.approx(0.25) and w[1, 0].item() == pytest.approx(0.125) and w[0, 3] == 0
    assert torch.allclose(token_weights(mask, "bnpo")[mask.bool()], torch.full((6,), 1 / 6, dtype=torch.float64))


# ----------------------------------------------------------------------------- whole loss by hand
def test_loss_by_hand_on_a_two_completion_group():
    # G = 2, rewards [1, 0]: A = +-0.5 / std([1, 0]) = +-0.5 / 0.70711 = +-0.70711 (eps 0)
    # one token each; pi_old = 0.5, pi_theta = [0.75, 0.25] -> rho = [1.5, 0.5]
    # surrogate: min(1.5 A, 1.2 A) = 0.84853 (clipped) and min(-0.5 A, -0.8 A) = -0.56569 (clipped)
    # grpo loss, beta 0: -(0.84853 - 0.56569) / 2 = -0.14142
    # k3 with pi_ref = pi_old = 0.5: row 0 d = log(0.5 / 0.75): 0.66667 + 0.40547 - 1 = 0.07213;
    # row 1 d = log 2: 2 - 0.69315 - 1 = 0.30685
    # beta 0.04: -((0.84853 - 0.04 * 0.07213) + (-0.56569 - 0.04 * 0.30685)) / 2 = -0.13384
    logps = torch.log(torch.tensor([[0.75], [0.25]], dtype=torch.float64))
    old = torch.log(torch.tensor([[0.5], [0.5]], dtype=torch.float64))
    kw = dict(mask=None, rewards=[1.0, 0.0], num_generations=2, adv_eps=0.0)
    p0 = grpo_loss_by_hand(logps, old, None, beta=0.0, **kw)
    assert p0.loss.item() == pytest.approx(-0.14142135623730945, abs=1e-12)
    assert p0.clipped.flatten().tolist() == [True, True]
    p1 = grpo_loss_by_hand(logps, old, old, beta=0.04, **kw)
    assert p1.loss.item() == pytest.approx(-0.13384166435301176, abs=1e-12)
    assert p1.kl.flatten().tolist() == pytest.approx([0.07213177477483113, 0.3068528194400546])


@pytest.mark.parametrize("kwargs, field", [
    ({"logps": torch.zeros(4)}, "logps"),
    ({"old_logps": -torch.ones(4, 2)}, "old_logps"),
    ({"rewards": [1, 0]}, "rewards"),
    ({"ref_logps": None}, "ref_logps"),
    ({"logps": torch.full((4, 3), 0.5)}, "logps"),
])
def test_loss_input_errors(kwargs, field):
    args = dict(logps=-torch.ones(4, 3), old_logps=None, ref_logps=-torch.ones(4, 3), mask=None,
                rewards=[1, 0, 0, 1], num_generations=4, beta=0.04)
    args.update(kwargs)
    with pytest.raises(GRPOInputError, match=field):
        grpo_loss_by_hand(**args)


# --------------------------------------------------------------------------------- against TRL
@pytest.fixture(scope="module")
def batch():
    return toy_batch(seed=0)


def _both(batch, **kw):
    old = kw.pop("old_logps", batch["old_logps"])
    args = dict(old_logps=old, ref_logps=batch["ref_logps"], mask=batch["mask"],
                rewards=kw.pop("rewards", batch["rewards"]), num_generations=batch["num_generations"], **kw)
    lp = batch["logps"].clone().requires_grad_(True)
    hand = grpo_loss_by_hand(lp, **args)
    hand.loss.backward()
    trl = trl_grpo_loss_on(batch["logps"], **args)
    return hand, lp.grad, trl


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_matches_trl_loss(batch, loss_type, beta):
    hand, grad, trl = _both(batch, beta=beta, loss_type=loss_type)
    m = batch["mask"].bool()
    assert abs(hand.loss.item() - trl["loss"].item()) < 1e-6
    assert (grad - trl["grad_logps"])[m].abs().max().item() < 1e-6
    assert (hand.advantages - trl["advantages"]).abs().max().item() < 1e-6
    assert trl["metrics"]["clip_ratio/region_mean"] == pytest.approx(hand.summary()["clip_fraction"], abs=1e-6)
    assert trl["metrics"].get("kl", 0.0) == pytest.approx(hand.summary()["kl"], abs=1e-6)
    assert hand.summary()["clip_fraction"] > 0  # the batch exercises the clip


@pytest.mark.parametrize("kw", [
    {"scale_rewards": "batch"},
    {"scale_rewards": "none"},
    {"old_logps": None},                                  # on-policy: pi_old = pi_theta
    {"kl_ratio_correction": True},                        # TRL 1.16's default use_bias_correction_kl
    {"kl_ratio_correction": True, "old_logps": None},
    {"eps_high": 0.28, "loss_type": "dapo"},              # DAPO's asymmetric clip
    {"max_completion_length": 10, "loss_type": "dr_grpo"},
    {"rewards": [float("nan"), 1, 0, 1, 2, 2, 2, 2]},     # an unscored completion and a constant group
], ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items() if a != "rewards") or "nan_and_constant_rewards")
def test_matches_trl_variants(batch, kw):
    kw = {"beta": 0.04, "loss_type": "grpo", **kw}
    hand, grad, trl = _both(batch, **kw)
    m = batch["mask"].bool()
    assert abs(hand.loss.item() - trl["loss"].item()) < 1e-6
    assert (grad - trl["grad_logps"])[m].abs().max().item() < 1e-6
    assert (hand.advantages - trl["advantages"]).abs().max().item() < 1e-6


def test_trl_reads_back_the_chosen_logps(batch):
    trl = trl_grpo_loss_on(batch["logps"], None, None, batch["mask"], batch["rewards"], 4, beta=0.0)
    m = batch["mask"].bool()
    assert (trl["logps"] - batch["logps"])[m].abs().max().item() < 1e-5  # float32 fused LM head


def test_trl_needs_right_padded_mask(batch):
    mask = batch["mask"].clone()
    mask[1, 0] = 0  # a hole before real tokens
    with pytest.raises(GRPOInputError, match="mask"):
        trl_grpo_loss_on(batch["logps"], None, None, mask, batch["rewards"], 4, beta=0.0)


def test_kl_ratio_correction_changes_the_on_policy_gradient_not_the_value(batch):
    # on-policy rho = 1, so rho * k3 = k3 in value, but d(rho k3) = k3 d logp + d k3: TRL 1.16's
    # default (use_bias_correction_kl=True) is not the papers' objective
    args = dict(old_logps=None, ref_logps=batch["ref_logps"], mask=batch["mask"], rewards=batch["rewards"],
                num_generations=4, beta=0.04)
    grads, losses = [], []
    for corr in (False, True):
        lp = batch["logps"].clone().requires_grad_(True)
        p = grpo_loss_by_hand(lp, **args, kl_ratio_correction=corr)
        p.loss.backward()
        grads.append(lp.grad)
        losses.append(p.loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-12)
    assert (grads[0] - grads[1]).abs().max().item() > 1e-4


def test_paper_settings_table_reads_configs_and_trl_defaults():
    rows = {r["setting"]: r for r in paper_settings_vs_trl_defaults()}
    assert rows["loss_type"]["trl_default"] == "dapo" and rows["beta"]["trl_default"] == 0.0
    assert rows["loss_type"]["medground"] == "grpo" and rows["beta"]["medground"] == pytest.approx(0.04)
    assert rows["use_bias_correction_kl"]["trl_default"] is True
    assert rows["use_bias_correction_kl"]["papers_objective"] is False
