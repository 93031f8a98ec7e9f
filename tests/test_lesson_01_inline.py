"""Lesson 1's inline definitions (parameter counting, bits per weight, weight memory) against the package,
transformers' meta builds and gguf's block sizes: no drift."""
import random

import gguf
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from notebook_defs import notebook_definitions
from slmcourse import anatomy, catalogue, count_parameters, full_size
from slmcourse.memory import FORMATS, weights_bytes

LESSON = "course/01_what_is_an_slm.ipynb"


@pytest.fixture(scope="module")
def defs():
    return notebook_definitions(LESSON, ["llama_parameters", "bits_per_weight", "weights_memory"])


def _random_llama_config(seed: int) -> LlamaConfig:
    rng = random.Random(seed)
    kv = rng.choice([1, 2, 3, 4])
    heads = kv * rng.choice([1, 2, 3])
    head_dim = rng.choice([8, 16, 64])
    hidden = heads * head_dim if rng.random() < 0.7 else heads * rng.choice([4, 24, 40])   # head_dim need not be hidden / heads
    return LlamaConfig(vocab_size=rng.randint(100, 5000), hidden_size=hidden, intermediate_size=rng.randint(16, 700),
                       num_hidden_layers=rng.randint(1, 6), num_attention_heads=heads, num_key_value_heads=kv,
                       head_dim=head_dim, tie_word_embeddings=rng.random() < 0.5)


@pytest.mark.parametrize("seed", range(8))
def test_llama_parameters_matches_the_package_and_transformers(defs, seed):
    config = _random_llama_config(seed)
    by_hand = defs["llama_parameters"](config)
    assert by_hand == anatomy.llama_parameter_count(config)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert by_hand == count_parameters(model)


@pytest.mark.parametrize("key", ["smollm2-135m", "tinyllama-1.1b", "mistral-7b", "codellama-7b", "gemma-2b"])
def test_llama_parameters_on_the_catalogued_models(defs, key):
    assert defs["llama_parameters"](full_size(key).config) == catalogue.get(key).params


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q4_1", "Q5_K", "Q4_K", "Q6_K"])
def test_bits_per_weight_matches_gguf_block_sizes(defs, name):
    block, nbytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]]
    bits = defs["bits_per_weight"](block, nbytes)
    assert bits == 8 * nbytes / block
    if name in FORMATS:
        assert bits == FORMATS[name].bits_per_weight
    if name == "Q5_K":
        assert bits == FORMATS["Q5_K_M"].bits_per_weight   # the course prices Q5_K_M at its main block type


@pytest.mark.parametrize("n", [0, 1, 135_000_000, 7_241_732_096, 123_456_789])
def test_weights_memory_matches_weights_bytes(defs, n):
    for name, fmt in FORMATS.items():
        assert abs(defs["weights_memory"](n, fmt.bits_per_weight) - weights_bytes(n, name)) < 1, name
