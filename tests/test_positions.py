"""The tiny length-extrapolation models of lesson 6: data, models, and a quick miniature of the experiment."""
import math

import pytest
import torch

from slmcourse import CourseError
from slmcourse.positions import MarkovLanguage, TinyLM, extrapolation_experiment, loss_at_length, train_tiny


def test_markov_language_is_a_seeded_distribution_with_a_known_floor():
    lang = MarkovLanguage(vocab=8, choices=2, seed=3)
    table = lang.table
    torch.testing.assert_close(table.sum(-1), torch.ones(8, 8))
    assert int((table[0, 0] > 0).sum()) == 2
    assert torch.equal(lang.sample(4, 10, seed=1), lang.sample(4, 10, seed=1))
    seq = lang.sample(64, 20, seed=2)
    for t in range(2, 20):  # every sampled token is allowed by the table
        assert (table[seq[:, t - 2], seq[:, t - 1], seq[:, t]] > 0).all()
    assert 0 < lang.entropy() <= math.log(2) + 1e-6
    with pytest.raises(CourseError, match="at least 3 tokens"):
        lang.sample(1, 2, seed=0)


@pytest.mark.parametrize("kind", ["learned", "rope", "alibi", "none"])
def test_tiny_models_are_causal_and_learned_positions_stop_at_max_len(kind):
    torch.manual_seed(0)
    model = TinyLM(vocab=10, position=kind, d_model=16, heads=4, layers=1, max_len=8).eval()
    tokens = torch.randint(10, (2, 8))
    with torch.no_grad():
        full = model(tokens)
        changed = tokens.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 10
        assert torch.allclose(model(changed)[:, :-1], full[:, :-1], atol=1e-6)  # the future is invisible
    if kind == "learned":
        with pytest.raises(CourseError, match="only for 8 positions"):
            model(torch.randint(10, (1, 9)))
        assert math.isnan(loss_at_length(model, MarkovLanguage(vocab=10), 9))
    else:
        assert model(torch.randint(10, (1, 20))).shape == (1, 20, 10)


def test_errors():
    with pytest.raises(CourseError, match="unknown position kind"):
        TinyLM(10, "sinusoidal")
    with pytest.raises(CourseError, match="unknown position kind"):
        extrapolation_experiment(kinds=("rope", "t5"))


def test_a_short_run_learns_and_reports():
    lang = MarkovLanguage(vocab=8)
    _model, curve = train_tiny("alibi", lang, train_len=16, steps=30, batch=8)
    assert curve[-1] < curve[0]
    result = extrapolation_experiment(kinds=("learned", "alibi"), train_len=16, lengths=(8, 32), steps=10,
                                      language=lang, progress=False)
    assert math.isnan(result.loss["learned"][1]) and not math.isnan(result.loss["alibi"][1])
    assert "n/a" in result.table() and result.table().splitlines()[0].split()[1:] == ["8", "32"]
