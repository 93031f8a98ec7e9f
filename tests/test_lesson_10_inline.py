"""Lesson 10's inline definitions (log-likelihood scoring, the acc/acc_norm choice, answer extraction, the bootstrap
interval, McNemar's test, word n-grams) agree with slmcourse.evaluate.

The notebook builds each idea in a short cell; these tests pull those definitions out of the notebook
(`notebook_definitions`) and compare them with the package's validated copies on random inputs, so a
change to either side alone fails. The scoring is compared on a small random Llama (no download)."""
import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from notebook_defs import notebook_definitions
from slmcourse import evaluate as ev, ladder

NB = "course/10_evaluation.ipynb"
NAMES = ["option_logprob", "choose", "extract_answer", "bootstrap_interval", "mcnemar_exact", "ngram_set"]


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NB, NAMES)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=ladder.VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval(), ladder.ByteTokenizer()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_option_logprob_equals_the_package(nb, tiny, seed):
    model, tok = tiny
    rng = random.Random(seed)
    item = rng.choice(ev.load_items("facts", "test"))
    prompt = ev.few_shot_prompt("facts", item, shots=rng.randrange(3), seed=seed)
    ours = [nb["option_logprob"](model, tok, prompt, " " + c) for c in item["choices"]]
    theirs = ev.continuation_logprobs(model, tok, prompt, [" " + c for c in item["choices"]])
    assert ours == pytest.approx(theirs, abs=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_choose_equals_pick(nb, seed):
    rng = random.Random(seed)
    options = ["".join(rng.choice("abcde") for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(2, 6))]
    lps = [-rng.uniform(0.1, 30) for _ in options]
    for normalise in (False, True):
        assert nb["choose"](lps, options, normalise) == ev.pick(lps, options, normalise)


@pytest.mark.parametrize("text", [" 68", "The answer is 1,234.", " 12.50 dollars", "no idea", " -7 apples",
                                  " 7\n\nQuestion: What is 3 plus 4?\nAnswer: 7", "", "  \n\n 5", " 3.000", "x1y2"])
def test_extract_answer_equals_extract_number(nb, text):
    assert nb["extract_answer"](text) == ev.extract_number(text)


@pytest.mark.parametrize("seed, n, level", [(0, 10, 0.95), (1, 200, 0.95), (2, 57, 0.9), (3, 1, 0.95)])
def test_bootstrap_interval_equals_the_package(nb, seed, n, level):
    g = torch.Generator().manual_seed(seed)
    correct = (torch.rand(n, generator=g) < 0.6).tolist()
    assert nb["bootstrap_interval"](correct, level, 500, seed) == ev.bootstrap_ci(correct, level, 500, seed)


@pytest.mark.parametrize("seed, n", [(0, 5), (1, 40), (2, 200), (3, 1)])
def test_mcnemar_equals_the_package(nb, seed, n):
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.rand(n, generator=g) < 0.6).tolist(), (torch.rand(n, generator=g) < 0.5).tolist()
    assert nb["mcnemar_exact"](a, b) == ev.mcnemar(a, b)
    assert nb["mcnemar_exact"](a, a) == ev.mcnemar(a, a)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_ngram_set_equals_the_package(nb, n):
    text = "The soup was cold, and I will NOT go back; 12 of 13 diners agreed. The soup was cold!"
    assert nb["ngram_set"](text, n) == ev.ngrams(text, n)
