"""Lesson 11's DPO loss (slmcourse.dpo) against values computed by hand, the summed answer log-probability
against transformers' masked loss, the preference pairs built from the bundled data, and bad input."""
import math

import pytest
import torch

from slmcourse import CourseError, dpo, sft


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_dpo_loss_by_hand():
    loss, c, r = dpo.dpo_loss(t(-12.0), t(-15.0), t(-12.0), t(-15.0))
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-12) and c.item() == 0 and r.item() == 0
    loss, c, r = dpo.dpo_loss(t(-30.0), t(-41.0), t(-32.0), t(-38.0), beta=0.1)
    assert math.isclose(c.item(), 0.2, abs_tol=1e-12) and math.isclose(r.item(), -0.3, abs_tol=1e-12)
    assert math.isclose(loss.item(), math.log1p(math.exp(-0.5)), rel_tol=1e-12)
    loss, _, _ = dpo.dpo_loss(t(-1.0, -5.0), t(-3.0, -2.0), t(-2.0, -4.0), t(-2.0, -4.0), beta=0.5)
    by_hand = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-(-0.5 - 1.0)))) / 2   # margins +1.0, -1.5
    assert math.isclose(loss.item(), by_hand, rel_tol=1e-12)


def test_dpo_loss_gradient_pushes_the_margin_up():
    pc = torch.tensor([-10.0], requires_grad=True)
    pr = torch.tensor([-10.0], requires_grad=True)
    loss, _, _ = dpo.dpo_loss(pc, pr, t(-10.0).float(), t(-10.0).float(), beta=0.1)
    loss.backward()
    assert pc.grad.item() == pytest.approx(-0.05) and pr.grad.item() == pytest.approx(0.05)   # beta * sigmoid(0)


def test_dpo_loss_refuses_bad_input():
    with pytest.raises(CourseError, match="beta"):
        dpo.dpo_loss(t(1.0), t(1.0), t(1.0), t(1.0), beta=0)
    with pytest.raises(CourseError, match="one shape"):
        dpo.dpo_loss(t(1.0, 2.0), t(1.0), t(1.0), t(1.0))


def test_sequence_logprob_is_the_masked_sum():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 11, generator=g)
    labels = torch.tensor([[-100, -100, 3, 4, 5, -100], [-100, 1, 2, -100, -100, -100]])
    got = dpo.sequence_logprob(logits, labels)
    logp = torch.log_softmax(logits, -1)
    want = [sum(logp[b, j - 1, labels[b, j]] for j in range(1, 6) if labels[b, j] != -100) for b in range(2)]
    torch.testing.assert_close(got, torch.stack(want))
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), reduction="sum")
    torch.testing.assert_close(-got.sum(), ce)
    with pytest.raises(CourseError, match="batch"):
        dpo.sequence_logprob(logits[0], labels)


def test_concise_preferences_from_the_bundled_pairs():
    prefs = dpo.concise_preferences(sft.read_qa("domain_qa_train.txt"))
    assert len(prefs) >= 24
    for p in prefs:
        assert p["rejected"].startswith(p["chosen"].split(" Next: ")[0])
        assert p["chosen"].split(" Next: ")[1] == p["rejected"].split(" Next: ")[1]
        assert len(p["chosen"]) < len(p["rejected"])
