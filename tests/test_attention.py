"""slmcourse.attention against its references: PyTorch's SDPA and transformers' Llama, Mistral, Gemma,
MPT and BLOOM code, to 1e-5 in float32 on many shapes; clear errors on inconsistent input; and a real
SmolLM2 attention layer reproduced from its own weights."""
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import Gemma3TextConfig, LlamaConfig, MistralConfig
from transformers.masking_utils import create_sliding_window_causal_mask, sdpa_mask, sliding_window_causal_mask_function
from transformers.models.bloom.modeling_bloom import build_alibi_tensor
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv
from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

from slmcourse import CourseError
from slmcourse.attention import (
    RollingKVCache, alibi_bias, alibi_slopes, attended_pairs, attention_layer, attention_weights, causal_mask,
    grouped_query_attention, kv_cache_bytes, receptive_field, receptive_field_size, repeat_kv, rope, sliding_window_attention,
    rope_frequencies, scaled_dot_product_attention, sliding_window_mask)

ATOL = 1e-5
# (batch, heads, queries, keys, head_dim): odd sizes, one head, one token, one query against many keys
SHAPES = [(1, 1, 1, 1, 1), (2, 3, 5, 5, 7), (1, 9, 17, 17, 64), (3, 1, 4, 11, 8), (2, 6, 1, 13, 16),
          (1, 5, 33, 33, 3)]


def randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32)


# ----------------------------------------------------------------------------------- SDPA

@pytest.mark.parametrize("b,h,sq,sk,d", SHAPES)
def test_sdpa_matches_pytorch_plain_masked_and_biased(b, h, sq, sk, d):
    q, k, v = randn(b, h, sq, d, seed=1), randn(b, h, sk, d, seed=2), randn(b, h, sk, d, seed=3)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                               atol=ATOL, rtol=ATOL)
    mask = causal_mask(sq, sk)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=mask),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=ATOL)
    bias = randn(h, sq, sk, seed=4)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=mask, bias=bias),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=bias.masked_fill(~mask, -math.inf)),
                               atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, scale=0.3),
                               F.scaled_dot_product_attention(q, k, v, scale=0.3), atol=ATOL, rtol=ATOL)


def test_causal_mask_equals_is_causal_and_weights_sum_to_one():
    q, k, v = randn(2, 4, 9, 8, seed=1), randn(2, 4, 9, 8, seed=2), randn(2, 4, 9, 8, seed=3)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=causal_mask(9)),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=ATOL)
    w = attention_weights(q, k, mask=causal_mask(9))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 9))
    assert (w.triu(1) == 0).all()


def test_a_query_that_sees_nothing_gets_zeros_not_nan():
    q, k, v = randn(1, 1, 3, 4), randn(1, 1, 3, 4, seed=1), randn(1, 1, 3, 4, seed=2)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, True]])
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    assert not out.isnan().any() and (out[0, 0, 0] == 0).all()


def test_sdpa_errors_are_clear():
    q = randn(1, 2, 3, 4)
    with pytest.raises(CourseError, match="same head_dim"):
        scaled_dot_product_attention(q, randn(1, 2, 3, 5), randn(1, 2, 3, 5))
    with pytest.raises(CourseError, match="grouped_query_attention"):
        scaled_dot_product_attention(q, randn(1, 1, 3, 4), randn(1, 1, 3, 4))
    with pytest.raises(CourseError, match="boolean"):
        scaled_dot_product_attention(q, q, q, mask=torch.zeros(3, 3))
    with pytest.raises(CourseError, match="cannot be broadcast"):
        scaled_dot_product_attention(q, q, q, mask=causal_mask(5))
    with pytest.raises(CourseError, match="one vector per key"):
        scaled_dot_product_attention(q, q, randn(1, 2, 4, 4))
    with pytest.raises(CourseError, match="torch tensor|same number of dimensions"):
        scaled_dot_product_attention([[1.0]], q, q)


# ----------------------------------------------------------------------------------- masks

@pytest.mark.parametrize("seq,window", [(1, 1), (6, 3), (7, 1), (10, 4), (5, 5), (4, 9), (33, 8)])
@pytest.mark.parametrize("config_class", [MistralConfig, Gemma3TextConfig])
def test_sliding_window_mask_matches_mistral_and_gemma(seq, window, config_class):
    config = config_class(sliding_window=window, hidden_size=8, num_attention_heads=2, num_key_value_heads=1,
                          num_hidden_layers=2, vocab_size=10, head_dim=4)
    config._attn_implementation = "sdpa"
    theirs = create_sliding_window_causal_mask(config=config, inputs_embeds=torch.zeros(1, seq, 8),
                                               attention_mask=None, past_key_values=None,
                                               position_ids=torch.arange(seq)[None], allow_is_causal_skip=False)
    assert torch.equal(sliding_window_mask(seq, window), theirs[0, 0])


@pytest.mark.parametrize("q_len,kv_len,window", [(1, 10, 4), (3, 10, 4), (2, 5, 8), (1, 1, 1)])
def test_sliding_window_mask_while_decoding_matches_transformers(q_len, kv_len, window):
    theirs = sdpa_mask(batch_size=1, q_length=q_len, kv_length=kv_len, q_offset=kv_len - q_len,
                       mask_function=sliding_window_causal_mask_function(window), allow_is_causal_skip=False)
    assert torch.equal(sliding_window_mask(q_len, window, kv_len=kv_len), theirs[0, 0])


def test_mask_conventions_stated_in_the_docstring():
    m = sliding_window_mask(8, 3)
    for i in range(8):
        for j in range(8):
            assert bool(m[i, j]) == (i - 3 < j <= i)
    assert torch.equal(sliding_window_mask(8, 8), causal_mask(8)) and torch.equal(sliding_window_mask(8, 50), causal_mask(8))
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    assert causal_mask(2, kv_len=5).tolist() == [[True, True, True, True, False], [True] * 5]


def test_mask_errors():
    with pytest.raises(CourseError, match="window must be (a whole number >= 1|at least 1)"):
        sliding_window_mask(5, 0)
    with pytest.raises(CourseError, match="seq_len"):
        causal_mask(0)
    with pytest.raises(CourseError, match="cannot be shorter"):
        causal_mask(5, kv_len=3)
    with pytest.raises(CourseError, match="whole number"):
        sliding_window_mask(5, 2.5)


@pytest.mark.parametrize("seq,window,block", [(1, 1, None), (10, 3, None), (17, 4, 5), (9, 20, None), (33, 8, 3)])
def test_blockwise_sliding_window_attention_equals_the_masked_formula(seq, window, block):
    q, k, v = randn(2, 3, seq, 8, seed=1), randn(2, 3, seq, 8, seed=2), randn(2, 3, seq, 8, seed=3)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=sliding_window_mask(seq, window))
    torch.testing.assert_close(sliding_window_attention(q, k, v, window, block), expected, atol=ATOL, rtol=ATOL)


def test_attended_pairs_counts_the_mask():
    for seq, window in [(10, 3), (10, 10), (10, None), (100, 7), (1, 1)]:
        mask = causal_mask(seq) if window is None else sliding_window_mask(seq, window)
        assert attended_pairs(seq, window) == int(mask.sum())


def test_receptive_field_grows_by_window_minus_one_per_layer():
    seq, window = 40, 4
    masks = [sliding_window_mask(seq, window)] * 5
    for layers in range(1, 6):
        reach = receptive_field(masks[:layers])
        assert int(reach[-1].sum()) == receptive_field_size(layers, window) == layers * (window - 1) + 1
    # one global layer anywhere in the stack lets the last position see everything
    mixed = [sliding_window_mask(seq, window)] * 2 + [causal_mask(seq)]
    assert bool(receptive_field(mixed)[-1].all())
    with pytest.raises(CourseError, match="square boolean"):
        receptive_field([torch.zeros(3, 3)])


# ----------------------------------------------------------------------------------- GQA

@pytest.mark.parametrize("heads,kv_heads", [(1, 1), (9, 3), (4, 1), (6, 6), (12, 4), (5, 5), (15, 5), (7, 1)])
@pytest.mark.parametrize("sq", [1, 6])
def test_gqa_matches_pytorch_enable_gqa(heads, kv_heads, sq):
    b, sk, d = 2, 6, 8
    q, k, v = randn(b, heads, sq, d, seed=1), randn(b, kv_heads, sk, d, seed=2), randn(b, kv_heads, sk, d, seed=3)
    mask = causal_mask(sq, sk)
    ours = grouped_query_attention(q, k, v, mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("n_rep", [1, 2, 3, 7])
def test_repeat_kv_matches_llama(n_rep):
    x = randn(2, 3, 5, 4)
    assert torch.equal(repeat_kv(x, n_rep), hf_repeat_kv(x, n_rep))
    assert torch.equal(repeat_kv(x, n_rep)[:, n_rep], x[:, 1])  # query head n_rep uses KV head 1


def test_gqa_errors_are_clear():
    q = randn(1, 6, 3, 4)
    with pytest.raises(CourseError, match="6 query heads cannot be shared evenly among 4"):
        grouped_query_attention(q, randn(1, 4, 3, 4), randn(1, 4, 3, 4))
    with pytest.raises(CourseError, match="k has 2 heads but v has 3"):
        grouped_query_attention(q, randn(1, 2, 3, 4), randn(1, 3, 3, 4))
    with pytest.raises(CourseError, match="batch, heads, seq, head_dim"):
        grouped_query_attention(randn(6, 3, 4), randn(1, 2, 3, 4), randn(1, 2, 3, 4))
    with pytest.raises(CourseError, match="n_rep"):
        repeat_kv(randn(1, 2, 3, 4), 0)


# ----------------------------------------------------------------------------------- ALiBi

@pytest.mark.parametrize("n_heads", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 20, 32, 40, 64, 71])
def test_alibi_slopes_match_mpt_and_bloom(n_heads):
    ours = alibi_slopes(n_heads)
    mpt = build_mpt_alibi_tensor(n_heads, 2)[:, 0, 0]  # position 1 - 2 = -1 -> -slope
    bloom = build_alibi_tensor(torch.ones(1, 2), n_heads, torch.float32)[:, 0, 1]  # position 1 -> slope
    torch.testing.assert_close(ours, -mpt, atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(ours, bloom, atol=ATOL, rtol=ATOL)
    assert ours.shape == (n_heads,) and ours.dtype == torch.float32


def test_alibi_slopes_the_papers_examples():
    # Press et al. 2022, section 3: for 8 heads 1/2, 1/4, ..., 1/256; for 16 heads they interleave
    assert alibi_slopes(8).tolist() == [2.0 ** -i for i in range(1, 9)]
    torch.testing.assert_close(alibi_slopes(16), torch.tensor([2.0 ** -(i / 2) for i in range(1, 17)]))


@pytest.mark.parametrize("n_heads,seq", [(1, 1), (3, 7), (8, 16), (12, 5), (5, 33)])
def test_alibi_bias_gives_the_same_attention_as_mpt_and_bloom(n_heads, seq):
    ours = alibi_bias(n_heads, seq)
    assert ours.shape == (n_heads, seq, seq)
    mpt = build_mpt_alibi_tensor(n_heads, seq)  # (heads, 1, seq): one row, slope * (j - (seq - 1))
    bloom = build_alibi_tensor(torch.ones(1, seq), n_heads, torch.float32)  # (heads, 1, seq): slope * j
    torch.testing.assert_close(ours[:, -1], mpt[:, 0], atol=ATOL, rtol=ATOL)  # last row identical
    # every row differs from theirs by a constant, which softmax ignores
    for other in (mpt, bloom):
        diff = ours - other
        torch.testing.assert_close(diff, diff[..., :1].expand_as(diff), atol=1e-4, rtol=ATOL)
    q, k, v = randn(2, n_heads, seq, 8, seed=1), randn(2, n_heads, seq, 8, seed=2), randn(2, n_heads, seq, 8, seed=3)
    mask = causal_mask(seq)
    for other in (mpt, bloom):
        torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=mask, bias=ours),
                                   scaled_dot_product_attention(q, k, v, mask=mask, bias=other),
                                   atol=ATOL, rtol=ATOL)


def test_alibi_bias_definition_and_errors():
    b = alibi_bias(2, 4)
    assert alibi_slopes(2).tolist() == [1 / 16, 1 / 256]  # 2 heads: 2^(-8/2), 2^(-16/2)
    assert b[0, 3].tolist() == [-3 / 16, -2 / 16, -1 / 16, 0.0]  # -slope * (i - j) on the last row
    assert alibi_bias(2, 1, kv_len=4)[1, 0].tolist() == [-3 / 256, -2 / 256, -1 / 256, 0.0]
    with pytest.raises(CourseError, match="n_heads"):
        alibi_slopes(0)


# ----------------------------------------------------------------------------------- RoPE

@pytest.mark.parametrize("head_dim,base", [(2, 10000.0), (8, 10000.0), (64, 100000.0), (6, 500.0), (128, 1e6)])
@pytest.mark.parametrize("heads,seq", [(1, 1), (3, 7), (9, 20)])
def test_rope_matches_llama_rotary_embedding(head_dim, base, heads, seq):
    config = LlamaConfig(hidden_size=head_dim * heads, num_attention_heads=heads, head_dim=head_dim,
                         rope_theta=base, max_position_embeddings=4096)
    rotary = LlamaRotaryEmbedding(config)
    x = randn(2, heads, seq, head_dim, seed=seq)
    positions = torch.stack([torch.arange(seq), torch.arange(seq) + 1000])  # (batch, seq), far positions too
    cos, sin = rotary(x, positions)
    theirs, _ = apply_rotary_pos_emb(x, x, cos, sin)
    torch.testing.assert_close(rope(x, positions, base), theirs, atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(rope(x[:1], torch.arange(seq), base), theirs[:1], atol=ATOL, rtol=ATOL)


def test_rope_scores_depend_only_on_distance_and_keep_norms():
    q, k = randn(1, 1, 1, 16, seed=1), randn(1, 1, 1, 16, seed=2)
    def score(i, j):
        return float((rope(q, [i]) * rope(k, [j])).sum())
    assert score(5, 2) == pytest.approx(score(105, 102), abs=1e-4)
    assert score(0, 0) == pytest.approx(float((q * k).sum()), abs=1e-5)
    x = randn(2, 3, 10, 16)
    torch.testing.assert_close(rope(x, torch.arange(10)).norm(dim=-1), x.norm(dim=-1), atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(rope_frequencies(4, 10000.0), torch.tensor([1.0, 0.01]))


def test_rope_errors():
    with pytest.raises(CourseError, match="must be even"):
        rope(randn(1, 1, 3, 5), torch.arange(3))
    with pytest.raises(CourseError, match="4 positions given for a sequence of 3"):
        rope(randn(1, 1, 3, 4), torch.arange(4))
    with pytest.raises(CourseError, match="integer positions"):
        rope(randn(1, 1, 3, 4), torch.arange(3.0))


# ----------------------------------------------------------------------------------- rolling cache

def test_rolling_cache_decoding_equals_sliding_window_attention():
    window, seq, heads, kv_heads, d = 4, 11, 6, 2, 8
    q, k, v = randn(1, heads, seq, d, seed=1), randn(1, kv_heads, seq, d, seed=2), randn(1, kv_heads, seq, d, seed=3)
    full = grouped_query_attention(q, k, v, mask=sliding_window_mask(seq, window))
    cache = RollingKVCache(window)
    for t in range(seq):
        cache.append(k[:, :, t:t + 1], v[:, :, t:t + 1])
        assert len(cache) == min(t + 1, window)
        assert torch.equal(cache.keys(), k[:, :, max(0, t + 1 - window):t + 1])
        step = grouped_query_attention(q[:, :, t:t + 1], cache.keys(), cache.values())
        torch.testing.assert_close(step, full[:, :, t:t + 1], atol=ATOL, rtol=ATOL)
    assert cache.nbytes() == 2 * kv_heads * window * d * 4
    with pytest.raises(CourseError, match="empty"):
        RollingKVCache(3).keys()


# ----------------------------------------------------------------------------------- KV cache size

def test_kv_cache_bytes():
    assert kv_cache_bytes(30, 3, 64, 8192, 1, 2) == 2 * 30 * 3 * 64 * 8192 * 2
    assert kv_cache_bytes(1, 1, 1, 1, 1, 0.5) == 1
    with pytest.raises(CourseError, match="kv_heads"):
        kv_cache_bytes(30, -1, 64, 10)


# ----------------------------------------------------------------------------------- a real SmolLM2 layer

@pytest.fixture(scope="module")
def smollm2():
    from slmcourse import load
    model, _tok = load("smollm2-135m", device="cpu", dtype=torch.float32)
    return model


def test_a_real_smollm2_attention_layer_is_grouped_query_attention(smollm2):
    config = smollm2.config
    assert (config.num_attention_heads, config.num_key_value_heads) == (9, 3)
    layer = smollm2.model.layers[3].self_attn
    torch.manual_seed(0)
    hidden = torch.randn(2, 13, config.hidden_size)
    positions = torch.arange(13)[None].expand(2, -1)
    cos, sin = smollm2.model.rotary_emb(hidden, positions)
    with torch.no_grad():
        theirs, _ = layer(hidden, position_embeddings=(cos, sin), attention_mask=None)  # SDPA, is_causal
        ours = attention_layer(hidden, layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight,
                               layer.o_proj.weight, heads=9, kv_heads=3, positions=positions,
                               rope_base=config.rope_parameters["rope_theta"])
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=ATOL)


# --------------------------------------------------------------------------------------------
# tiled (online-softmax) attention, lesson 4
# --------------------------------------------------------------------------------------------
from slmcourse.attention import tiled_attention  # noqa: E402


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [1, 2, 3, 8, 64])
@pytest.mark.parametrize("query_block", [None, 1, 4])
def test_tiled_attention_matches_pytorch_sdpa(shape, block, query_block):
    b, h, nq, nk, d = shape
    q, k, v = randn(b, h, nq, d, seed=1), randn(b, h, nk, d, seed=2), randn(b, h, nk, d, seed=3)
    full = tiled_attention(q, k, v, block=block, query_block=query_block)
    torch.testing.assert_close(full, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=ATOL)
    causal = tiled_attention(q, k, v, block=block, causal=True, query_block=query_block)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(nq, nk))   # queries are the last ones
    torch.testing.assert_close(causal, reference, atol=ATOL, rtol=ATOL)
    torch.testing.assert_close(causal, scaled_dot_product_attention(q, k, v, mask=causal_mask(nq, nk)),
                               atol=ATOL, rtol=ATOL)


def test_tiled_attention_is_stable_for_large_scores_and_keeps_dtype():
    q = randn(1, 2, 9, 16, seed=4) * 40                     # scores in the thousands: a naive exp overflows
    out = tiled_attention(q, q, q, block=4, causal=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, q, q, is_causal=True), atol=1e-4, rtol=1e-4)
    half = tiled_attention(q.to(torch.bfloat16), q.to(torch.bfloat16), q.to(torch.bfloat16), block=4)
    assert half.dtype == torch.bfloat16
    scale = tiled_attention(q, q, q, block=5, scale=0.01)
    torch.testing.assert_close(scale, F.scaled_dot_product_attention(q, q, q, scale=0.01), atol=ATOL, rtol=ATOL)


def test_tiled_attention_errors():
    q, k = randn(1, 2, 5, 4), randn(1, 2, 3, 4)
    with pytest.raises(CourseError, match="at least as many keys"):
        tiled_attention(q, k, k, causal=True)
    with pytest.raises(CourseError, match="block must be a whole number"):
        tiled_attention(q, q, q, block=0)
    with pytest.raises(CourseError, match="repeat_kv"):
        tiled_attention(q, randn(1, 1, 5, 4), randn(1, 1, 5, 4))
    with pytest.raises(CourseError, match="head_dim"):
        tiled_attention(q, randn(1, 2, 5, 3), randn(1, 2, 5, 3))
    with pytest.raises(CourseError, match="batch, heads, seq, head_dim"):
        tiled_attention(q[0], q[0], q[0])
