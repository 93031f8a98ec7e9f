"""Lesson 3 builds the sampling filters and the cached generation loop in its own cells (`apply_temperature`,
`top_k_filter`, `top_p_filter`, `greedy`, `greedy_with_cache`); they must keep computing what the package's validated
copies compute (slmcourse.generation), on random logits and on a tiny random-weight Llama, so neither side can drift
alone."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from slmcourse import generation as g
from tests.notebook_defs import notebook_definitions

NOTEBOOK = "course/03_tokens_and_generation.ipynb"


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NOTEBOOK, ["apply_temperature", "top_k_filter", "top_p_filter", "greedy",
                                           "greedy_with_cache"])


def logits_for(seed, n, spread):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * spread


CASES = [(seed, n, spread) for seed in (0, 1, 2) for n, spread in ((2, 1.0), (17, 3.0), (1000, 2.0), (49152, 4.0))]


@pytest.mark.parametrize("seed,n,spread", CASES)
@pytest.mark.parametrize("temperature", [0.3, 1.0, 1.7])
def test_temperature_is_the_packages(nb, seed, n, spread, temperature):
    logits = logits_for(seed, n, spread)
    assert torch.equal(nb["apply_temperature"](logits, temperature), g.apply_temperature(logits, temperature))


@pytest.mark.parametrize("seed,n,spread", CASES)
def test_top_k_is_the_packages(nb, seed, n, spread):
    logits = logits_for(seed, n, spread)
    for k in {1, 2, min(5, n), n}:
        assert torch.equal(nb["top_k_filter"](logits, k), g.top_k_filter(logits, k))
    tied = torch.tensor([1.0, 3.0, 3.0, 0.5, 3.0])           # ties with the k-th are kept by both
    assert torch.equal(nb["top_k_filter"](tied, 2), g.top_k_filter(tied, 2))


@pytest.mark.parametrize("seed,n,spread", CASES)
@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_top_p_is_the_packages(nb, seed, n, spread, p):
    logits = logits_for(seed, n, spread)
    assert torch.equal(nb["top_p_filter"](logits, p), g.top_p_filter(logits, p))


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval()   # random weights: only the loop's bookkeeping is tested


@pytest.mark.parametrize("prompt", [[5], [1, 2, 3], list(range(10, 40))])
@pytest.mark.parametrize("new_tokens", [1, 7])
def test_the_loops_are_the_packages(nb, tiny_llama, prompt, new_tokens):
    expected = g.generate(tiny_llama, prompt, new_tokens, use_cache=True).ids
    assert nb["greedy_with_cache"](tiny_llama, prompt, new_tokens) == expected
    assert nb["greedy"](tiny_llama, prompt, new_tokens) == expected
    assert g.generate(tiny_llama, prompt, new_tokens, use_cache=False).ids == expected
