"""Lesson 7 (newest architectures): the notebook's inline definitions agree with slmcourse.newest."""
import pytest
import torch

from slmcourse import newest
from notebook_defs import notebook_definitions

NAMES = ["route_top_k", "moe_block", "load_balancing_loss", "rope_pairs", "mla_attention", "gated_delta_rule"]
DEFS = notebook_definitions("course/07_newest_architectures.ipynb", NAMES)


def test_every_inline_definition_is_found():
    assert set(NAMES) <= set(DEFS)


@pytest.mark.parametrize("seed,experts,k,normalize", [(0, 8, 2, True), (1, 16, 4, False), (2, 4, 1, True)])
def test_moe_router_block_and_loss(seed, experts, k, normalize):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 16, generator=g)
    router, gate_up, down = torch.randn(experts, 16, generator=g), torch.randn(experts, 24, 16, generator=g), \
        torch.randn(experts, 16, 12, generator=g)
    for a, b in zip(DEFS["route_top_k"](x.reshape(-1, 16), router, k, normalize),
                    newest.route_top_k(x.reshape(-1, 16), router, k, normalize)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(DEFS["moe_block"](x, router, gate_up, down, k, normalize),
                               newest.moe_block(x, router, gate_up, down, k, normalize))
    logits = torch.randn(40, experts, generator=g)
    torch.testing.assert_close(DEFS["load_balancing_loss"](logits, k), newest.load_balancing_loss(logits, k))


@pytest.mark.parametrize("seed,t,heads,rank,nope,rope,vdim", [(0, 5, 2, 8, 4, 4, 6), (1, 11, 4, 16, 8, 2, 8)])
def test_mla_and_rope(seed, t, heads, rank, nope, rope, vdim):
    g = torch.Generator().manual_seed(seed)
    hidden = 32
    w = {"q": torch.randn(heads * (nope + rope), hidden, generator=g) * 0.2,
         "kv_a": torch.randn(rank + rope, hidden, generator=g) * 0.2,
         "kv_norm": torch.rand(rank, generator=g) + 0.5,
         "kv_b": torch.randn(heads * (nope + vdim), rank, generator=g) * 0.2,
         "o": torch.randn(hidden, heads * vdim, generator=g) * 0.2}
    x = torch.randn(2, t, hidden, generator=g)
    torch.testing.assert_close(DEFS["mla_attention"](x, w, heads, rank, nope, rope, vdim, 500.0),
                               newest.mla_attention(x, w, heads, rank, nope, rope, vdim, 500.0))
    y = torch.randn(2, 3, t, 8, generator=g)
    torch.testing.assert_close(DEFS["rope_pairs"](y, torch.arange(t), 100.0), newest.rope_interleaved(y, torch.arange(t), 100.0))


@pytest.mark.parametrize("seed,t,h,dk,dv", [(0, 7, 2, 8, 4), (1, 13, 3, 4, 6)])
def test_gated_delta_rule(seed, t, h, dk, dv):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(2, t, h, dk, generator=g), torch.randn(2, t, h, dk, generator=g), torch.randn(2, t, h, dv, generator=g)
    k = torch.nn.functional.normalize(k, dim=-1)
    decay, beta = -torch.rand(2, t, h, generator=g), torch.rand(2, t, h, generator=g)
    for a, b in zip(DEFS["gated_delta_rule"](q, k, v, decay, beta), newest.gated_delta_rule(q, k, v, decay, beta)):
        torch.testing.assert_close(a, b)
