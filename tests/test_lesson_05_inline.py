"""Lesson 5's inline definitions (mask, blockwise attention, ring KV cache) agree with slmcourse.attention.

The notebook builds each idea in a short cell; these tests pull those definitions out of the notebook
(`notebook_definitions`) and compare them with the package's validated copies on random inputs, so a
change to either side alone fails.
"""
import pytest
import torch
import torch.nn.functional as F

from notebook_defs import notebook_definitions
from slmcourse import attention

NB = "course/05_attention_sliding_window.ipynb"


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NB, ["window_mask", "blockwise_window_attention", "RingKVCache"])


@pytest.mark.parametrize("seq, window", [(1, 1), (5, 1), (10, 4), (16, 16), (7, 30), (33, 5), (64, 9)])
def test_window_mask_equals_the_package(nb, seq, window):
    assert torch.equal(nb["window_mask"](seq, window), attention.sliding_window_mask(seq, window))


@pytest.mark.parametrize("seed, shape, window", [(0, (1, 2, 10, 8), 4), (1, (2, 3, 37, 16), 5),
                                                 (2, (1, 1, 64, 4), 64), (3, (2, 2, 50, 8), 1),
                                                 (4, (1, 4, 129, 32), 16)])
def test_blockwise_attention_equals_the_package_and_torch(nb, seed, shape, window):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=g) for _ in range(3))
    ours = nb["blockwise_window_attention"](q, k, v, window)
    torch.testing.assert_close(ours, attention.sliding_window_attention(q, k, v, window), atol=1e-5, rtol=1e-5)
    mask = attention.sliding_window_mask(shape[2], window)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed, window, steps, shape", [(0, 4, 12, (1, 3, 16)), (1, 1, 5, (2, 1, 8)),
                                                        (2, 7, 7, (1, 2, 4)), (3, 5, 23, (2, 2, 8))])
def test_ring_cache_holds_what_the_package_cache_holds(nb, seed, window, steps, shape):
    g = torch.Generator().manual_seed(seed)
    b, h, d = shape
    ring, package = nb["RingKVCache"](window), attention.RollingKVCache(window)
    for _ in range(steps):
        k, v = torch.randn(b, h, 1, d, generator=g), torch.randn(b, h, 1, d, generator=g)
        ring.append(k, v)
        package.append(k, v)
        assert torch.equal(ring.keys(), package.keys())
        assert torch.equal(ring.values(), package.values())
    assert ring.seen == package.seen == steps
