"""Lesson 2's inline ALBERT count (factorised embeddings, cross-layer sharing) against transformers' AlbertModel
on meta and the package: no drift."""
import random

import pytest
import torch
from transformers import AlbertConfig, AlbertModel

from notebook_defs import notebook_definitions
from slmcourse import anatomy, catalogue, count_parameters
from slmcourse.models import make_config

LESSON = "course/02_architectures.ipynb"


@pytest.fixture(scope="module")
def defs():
    return notebook_definitions(LESSON, ["albert_parameters"])


def _random_albert_config(seed: int) -> AlbertConfig:
    rng = random.Random(seed)
    heads = rng.choice([1, 2, 4])
    layers = rng.choice([1, 2, 4, 6])
    groups = rng.choice([g for g in (1, 2, 3, 6) if layers % g == 0 and g <= layers])
    return AlbertConfig(vocab_size=rng.randint(50, 3000), embedding_size=rng.choice([8, 16, 128]),
                        hidden_size=heads * rng.choice([8, 16, 32]), intermediate_size=rng.randint(8, 300),
                        num_hidden_layers=layers, num_attention_heads=heads, num_hidden_groups=groups,
                        inner_group_num=rng.choice([1, 1, 2]), max_position_embeddings=rng.choice([64, 512]),
                        type_vocab_size=rng.choice([1, 2, 3]))


@pytest.mark.parametrize("seed", range(8))
def test_albert_parameters_matches_albert_model_and_the_package(defs, seed):
    config = _random_albert_config(seed)
    by_hand = defs["albert_parameters"](config)
    with torch.device("meta"):
        model = AlbertModel(config)
    assert by_hand == count_parameters(model)
    assert by_hand == anatomy.albert_parameter_count(config)


def test_albert_parameters_on_albert_base(defs):
    assert defs["albert_parameters"](make_config("albert-base")) == catalogue.get("albert-base").params == 11_683_584
    assert defs["albert_parameters"](make_config("albert-base", num_hidden_groups=12)) == 89_650_176
