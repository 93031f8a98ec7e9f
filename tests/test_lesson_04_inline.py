"""Lesson 4 builds attention in its own cells (`sdpa`, `repeat_kv`, `gqa`, `tiled_sdpa`); they must keep computing
what the package's validated copies compute (slmcourse.attention), on random inputs of several shapes and seeds, so
neither side can drift alone."""
import pytest
import torch

from slmcourse import attention
from tests.notebook_defs import notebook_definitions

NOTEBOOK = "course/04_attention_gqa.ipynb"
ATOL = 1e-5


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NOTEBOOK, ["sdpa", "repeat_kv", "gqa", "tiled_sdpa"])


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# (batch, query heads, KV heads, queries, keys, head_dim)
SHAPES = [(1, 1, 1, 1, 1, 1), (2, 4, 4, 7, 7, 16), (1, 9, 3, 12, 12, 64), (3, 8, 1, 5, 5, 8), (2, 6, 2, 3, 10, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_sdpa_is_the_packages_formula(nb, shape, seed):
    b, h, _, nq, nk, d = shape
    q, k, v = randn(b, h, nq, d, seed=seed), randn(b, h, nk, d, seed=seed + 10), randn(b, h, nk, d, seed=seed + 20)
    mask = attention.causal_mask(nq, nk)
    torch.testing.assert_close(nb["sdpa"](q, k, v, mask), attention.scaled_dot_product_attention(q, k, v, mask=mask),
                               atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(nb["sdpa"](q, k, v), attention.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_repeat_kv_and_gqa_are_the_packages(nb, shape, seed):
    b, h, g, nq, nk, d = shape
    q, k, v = randn(b, h, nq, d, seed=seed), randn(b, g, nk, d, seed=seed + 10), randn(b, g, nk, d, seed=seed + 20)
    assert torch.equal(nb["repeat_kv"](k, h // g), attention.repeat_kv(k, h // g))
    mask = attention.causal_mask(nq, nk)
    torch.testing.assert_close(nb["gqa"](q, k, v, mask), attention.grouped_query_attention(q, k, v, mask=mask),
                               atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [1, 3, 16])
@pytest.mark.parametrize("causal", [False, True])
def test_tiled_sdpa_is_the_packages_tiled_attention(nb, shape, block, causal):
    b, h, _, nq, nk, d = shape
    q, k, v = randn(b, h, nq, d, seed=block), randn(b, h, nk, d, seed=block + 1), randn(b, h, nk, d, seed=block + 2)
    ours = nb["tiled_sdpa"](q, k, v, block=block, causal=causal)
    torch.testing.assert_close(ours, attention.tiled_attention(q, k, v, block=block, causal=causal), atol=ATOL, rtol=ATOL)
    mask = attention.causal_mask(nq, nk) if causal else None
    torch.testing.assert_close(ours, attention.scaled_dot_product_attention(q, k, v, mask=mask), atol=ATOL, rtol=ATOL)
