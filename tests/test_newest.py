"""Lesson 7's package module: each from-scratch block against transformers' own implementation."""
import pytest
import torch
from transformers import DeepseekV2Config, OlmoeConfig, Qwen3MoeConfig
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Attention, DeepseekV2RotaryEmbedding
from transformers.models.olmoe.modeling_olmoe import OlmoeSparseMoeBlock
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock, load_balancing_loss_func
from transformers.models.qwen3_next.modeling_qwen3_next import (torch_chunk_gated_delta_rule,
                                                                torch_recurrent_gated_delta_rule)

import slmcourse
from slmcourse import catalogue, newest
from slmcourse.errors import CourseError


def _random_(module, seed):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return module.eval()


@pytest.mark.parametrize("seed,experts,k", [(0, 8, 2), (1, 16, 4), (2, 4, 1)])
def test_moe_block_matches_qwen3_moe_and_olmoe(seed, experts, k):
    for cls, conf, normalize in ((Qwen3MoeSparseMoeBlock, Qwen3MoeConfig, True),
                                 (OlmoeSparseMoeBlock, OlmoeConfig, False)):
        kw = dict(hidden_size=32, num_experts=experts, num_experts_per_tok=k, norm_topk_prob=normalize)
        kw["moe_intermediate_size" if conf is Qwen3MoeConfig else "intermediate_size"] = 24
        block = _random_(cls(conf(**kw)), seed)
        x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = block(x)
            ours = newest.moe_block(x, block.gate.weight, block.experts.gate_up_proj, block.experts.down_proj, k,
                                    normalize)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed,experts,k", [(0, 8, 2), (3, 64, 8)])
def test_load_balancing_loss_matches_transformers(seed, experts, k):
    logits = torch.randn(50, experts, generator=torch.Generator().manual_seed(seed))
    ref = load_balancing_loss_func((logits,), experts, k)
    torch.testing.assert_close(newest.load_balancing_loss(logits, k), ref)
    even = torch.zeros(experts * 4, experts)
    even[torch.arange(experts * 4), torch.arange(experts * 4) % experts] = 10.0  # one favourite each, evenly
    assert abs(float(newest.load_balancing_loss(even, 1)) - 1.0) < 0.01


@pytest.mark.parametrize("seed,t,q_rank", [(0, 5, None), (1, 9, None)])
def test_mla_matches_deepseek_v2_attention(seed, t, q_rank):
    cfg = DeepseekV2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16,
                           q_lora_rank=q_rank, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                           num_hidden_layers=1, vocab_size=10, attn_implementation="sdpa")
    attn = _random_(DeepseekV2Attention(cfg, 0), seed)
    attn.kv_a_layernorm.weight.data.uniform_(0.5, 1.5)
    rotary = DeepseekV2RotaryEmbedding(cfg)
    x = torch.randn(2, t, 64, generator=torch.Generator().manual_seed(seed))
    pos = torch.arange(t)[None].expand(2, t)
    with torch.no_grad():
        ref, _ = attn(x, attention_mask=None, position_embeddings=rotary(x, pos))
        w = {"q": attn.q_proj.weight, "kv_a": attn.kv_a_proj_with_mqa.weight, "kv_norm": attn.kv_a_layernorm.weight,
             "kv_b": attn.kv_b_proj.weight, "o": attn.o_proj.weight}
        ours = newest.mla_attention(x, w, 4, 16, 8, 4, 8, base=cfg.rope_parameters["rope_theta"],
                                    eps=cfg.rms_norm_eps)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed,t,h,dk,dv", [(0, 6, 2, 8, 4), (1, 20, 3, 4, 6)])
def test_gated_delta_rule_matches_transformers_recurrent_and_chunked_kernels(seed, t, h, dk, dv):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, t, h, dk, generator=g), torch.nn.functional.normalize(torch.randn(2, t, h, dk, generator=g), dim=-1)
    v = torch.randn(2, t, h, dv, generator=g)
    decay = -torch.rand(2, t, h, generator=g)
    beta = torch.rand(2, t, h, generator=g)
    out, state = newest.gated_delta_rule(q, k, v, decay, beta)
    ref, ref_state = torch_recurrent_gated_delta_rule(q, k, v, decay, beta, output_final_state=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(state, ref_state)
    chunk, chunk_state = torch_chunk_gated_delta_rule(q, k, v, decay, beta, chunk_size=4, output_final_state=True)
    torch.testing.assert_close(out, chunk, rtol=1e-4, atol=1e-4)
    # carrying the state over splits the sequence without changing anything
    a, s = newest.gated_delta_rule(q[:, :3], k[:, :3], v[:, :3], decay[:, :3], beta[:, :3])
    b, s2 = newest.gated_delta_rule(q[:, 3:], k[:, 3:], v[:, 3:], decay[:, 3:], beta[:, 3:], state=s)
    torch.testing.assert_close(torch.cat([a, b], dim=1), out)


def test_rope_interleaved_keeps_norms_and_is_relative():
    x = torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(0))
    r = newest.rope_interleaved(x, torch.arange(6))
    torch.testing.assert_close(r.norm(dim=-1), x.norm(dim=-1))
    a = newest.rope_interleaved(x[:, :1], torch.tensor([2])) @ newest.rope_interleaved(x[:, 1:2], torch.tensor([5])).mT
    b = newest.rope_interleaved(x[:, :1], torch.tensor([7])) @ newest.rope_interleaved(x[:, 1:2], torch.tensor([10])).mT
    torch.testing.assert_close(a, b)


def test_bytes_per_token():
    assert newest.kv_bytes_per_token(32, 8, 128) == 2 * 32 * 8 * 128 * 2
    assert newest.mla_bytes_per_token(27, 512, 64) == 27 * 576 * 2
    with pytest.raises(CourseError, match="kv_heads"):
        newest.kv_bytes_per_token(32, 0, 128)


def test_cache_bytes_of_catalogued_models():
    llama = catalogue.get("llama-3.2-1b")
    assert newest.cache_bytes(llama, 1000) == {"kv": 2 * 16 * 8 * 64 * 2 * 1000, "state": 0.0}
    ds = newest.cache_bytes("deepseek-v2-lite", 1000)
    assert ds["kv"] == 27 * (512 + 64) * 2 * 1000 and ds["state"] == 0
    lfm = newest.cache_bytes("lfm2-1.2b", 1000)
    assert lfm["kv"] == 6 * 2 * 8 * 64 * 2 * 1000 and lfm["state"] == 10 * 2048 * 3 * 2
    granite = newest.cache_bytes("granite-4.0-h-micro", 10), newest.cache_bytes("granite-4.0-h-micro", 20)
    assert granite[0]["state"] == granite[1]["state"] > 0 and granite[1]["kv"] == 2 * granite[0]["kv"]
    gemma = newest.cache_bytes("gemma-3-1b", 100_000)
    assert gemma["kv"] == 2 * 256 * 2 * (4 * 100_000 + 22 * 512)            # 4 global layers, 22 local
    assert newest.cache_bytes("modernbert-base", 100) == {"kv": 0.0, "state": 0.0}


@pytest.mark.parametrize("key", ["olmoe-1b-7b", "deepseek-v2-lite"])
def test_active_parameters_match_the_published_figure(key):
    card = catalogue.get(key)
    c = card.config
    experts = c.get("num_experts") or c.get("n_routed_experts")
    active = newest.active_parameters(slmcourse.full_size(key), experts, c["num_experts_per_tok"])
    assert abs(active - card.active_params) / card.active_params < 0.01, (active, card.active_params)


def test_bad_input_is_explained():
    x = torch.randn(3, 8)
    with pytest.raises(CourseError, match="only 4"):
        newest.route_top_k(x, torch.randn(4, 8), 5)
    with pytest.raises(CourseError, match="hidden size"):
        newest.route_top_k(x, torch.randn(4, 6), 1)
    with pytest.raises(CourseError, match="do not fit"):
        newest.moe_block(x, torch.randn(4, 8), torch.randn(4, 6, 8), torch.randn(4, 8, 4), 1)
    with pytest.raises(CourseError, match="even"):
        newest.rope_interleaved(torch.randn(2, 3), torch.arange(2))
    with pytest.raises(CourseError, match="shapes do not fit"):
        newest.gated_delta_rule(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 3), torch.randn(1, 2, 1, 4),
                                torch.zeros(1, 2, 1), torch.ones(1, 2, 1))
    with pytest.raises(CourseError, match="weights"):
        newest.mla_attention(torch.randn(1, 2, 8), {}, 1, 2, 2, 2, 2)


def test_the_chooser_ranks_the_2024_26_block_on_request():
    from slmcourse import choose as C

    default = {c.key for c in C.choose()}
    assert not default & set(catalogue.newest_names())                  # lessons' rankings unchanged
    ranked = C.choose(task="chat", memory_gib=4.0, precision="Q4_K_M", context=8192, include_rejected=False,
                      include_newest=True)
    keys = [c.key for c in ranked]
    assert {"qwen3-0.6b", "llama-3.2-1b", "gemma-3-1b"} <= set(keys) and "olmoe-1b-7b" not in keys
    assert ranked[0].params == max(c.params for c in ranked)
    multi = {c.key for c in C.choose(task="chat", multilingual=True, include_rejected=False, include_newest=True)}
    assert {"qwen3-0.6b", "smollm3-3b"} <= multi
    assert C.tasks_of("modernbert-base") == ("embeddings",)


@pytest.mark.parametrize("key", ["qwen3.5-0.8b", "falcon-h1-0.5b", "gemma-3n-e4b"])
def test_cache_bytes_of_the_issue_17_hybrids_match_transformers_caches(key):
    """KV and recurrent state counted by newest.cache_bytes == the tensors transformers' cache holds."""
    import dataclasses

    import slmcourse

    card = catalogue.get(key)
    model = slmcourse.scaled_down(key)
    tokens = 10
    cache = model(input_ids=torch.randint(0, 100, (1, tokens)), use_cache=True).past_key_values
    kv = state = 0
    for i, layer in enumerate(cache.layers):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            kv += t.numel() if torch.is_tensor(t) and t.dim() == 4 else 0
        if getattr(layer, "conv_states", None):
            state += cache.get_conv_state(i).numel() + cache.get_recurrent_state(i).numel()
    small = dataclasses.replace(card, config={**card.config, **card.scaled_down})
    assert newest.cache_bytes(small, tokens, 1.0) == {"kv": float(kv), "state": float(state)}


def test_the_issue_17_hybrids_full_size():
    qwen = newest.cache_bytes("qwen3.5-0.8b", 1000)
    assert qwen["kv"] == 6 * 2 * 2 * 256 * 2 * 1000                       # 6 attention layers of 24
    assert qwen["state"] == 18 * ((2 * 16 * 128 + 16 * 128) * 4 + 16 * 128 * 128) * 2
    falcon = newest.cache_bytes("falcon-h1-0.5b", 1000)
    assert falcon["kv"] == 36 * 2 * 2 * 64 * 2 * 1000                      # attention in every layer
    assert falcon["state"] == 36 * ((1536 + 2 * 128) * 4 + 24 * 64 * 128) * 2
    kinds = newest.layer_kinds("gemma-3n-e4b")
    assert kinds.count("kv_shared") == 15 and kinds[:5] == ["sliding_attention"] * 4 + ["full_attention"]
    g3n = newest.cache_bytes("gemma-3n-e4b", 100_000)
    assert g3n == {"kv": (16 * 512 + 4 * 100_000) * 2 * 2 * 256 * 2, "state": 0.0}
    assert newest.cache_bytes("embeddinggemma-300m", 100) == {"kv": 0.0, "state": 0.0}
