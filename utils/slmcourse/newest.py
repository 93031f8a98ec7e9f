"""Lesson 7: the mechanisms of the newest small models, as plain validated functions.

* Mixture of experts: `route_top_k`, `moe_block`, `load_balancing_loss` (Switch Transformer's auxiliary
  loss), `active_parameters` (what one token touches) - checked against transformers' Qwen3-MoE / OLMoE.
* Multi-head latent attention (DeepSeek-V2): `rope_interleaved`, `mla_attention` - checked against
  transformers' `DeepseekV2Attention`.
* A linear-attention recurrence: `gated_delta_rule` (gated DeltaNet, the linear layer of Qwen3-Next and
  Qwen3.5), one token at a time - checked against transformers' torch fallback kernels.
* Memory that grows with the context and memory that does not: `kv_bytes_per_token`,
  `mla_bytes_per_token`, `cache_bytes` (KV cache plus fixed recurrent state for a catalogued model).

Weight layouts follow transformers 5 (fused experts: `gate_up` is (experts, 2 * intermediate, hidden),
`down` is (experts, hidden, intermediate)), so a module's weights can be passed in directly.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .errors import CourseError

# Layer kinds in transformers' `layer_types` lists that keep a KV cache growing with the context,
# those that keep only the last `sliding_window` tokens, and those with a fixed-size state.
ATTENTION_LAYERS = ("attention", "full_attention", "global_attention")
SLIDING_LAYERS = ("sliding_attention", "local_attention")
RECURRENT_LAYERS = ("mamba", "conv", "linear_attention")
PARALLEL_LAYERS = ("attention+mamba",)   # Falcon-H1: attention and Mamba-2 heads side by side in one layer
SHARED_LAYERS = ("kv_shared",)           # Gemma 3n: the last layers reuse earlier layers' keys and values


def _tensor(x: Any, what: str, dims: int | tuple[int, ...]) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise CourseError(f"{what} must be a torch tensor, got {type(x).__name__}")
    allowed = (dims,) if isinstance(dims, int) else dims
    if x.dim() not in allowed:
        raise CourseError(f"{what} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(x.shape)}")
    return x


def _positive_int(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CourseError(f"{what} must be a whole number of at least {minimum}, got {value!r}")
    return value


# ------------------------------------------------------------------------------- mixture of experts

def route_top_k(hidden: torch.Tensor, router_weight: torch.Tensor, k: int, normalize: bool = True):
    """Router: softmax over experts, keep the k largest per token (renormalised to sum 1 if `normalize`).

    hidden (tokens, hidden), router_weight (experts, hidden) -> (logits (tokens, experts),
    weights (tokens, k), indices (tokens, k)). Qwen3-MoE normalises (norm_topk_prob=True); OLMoE does not.
    """
    _tensor(hidden, "hidden", 2)
    _tensor(router_weight, "router_weight", 2)
    if router_weight.shape[1] != hidden.shape[1]:
        raise CourseError(f"router_weight is (experts, hidden) = {tuple(router_weight.shape)}, but the tokens have "
                          f"hidden size {hidden.shape[1]}")
    experts = router_weight.shape[0]
    _positive_int(k, "k (experts per token)")
    if k > experts:
        raise CourseError(f"cannot route each token to k={k} experts: there are only {experts}")
    logits = hidden @ router_weight.T
    probs = logits.float().softmax(dim=-1)
    weights, indices = probs.topk(k, dim=-1)
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return logits, weights.to(hidden.dtype), indices


def moe_block(hidden: torch.Tensor, router_weight: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor,
              k: int, normalize: bool = True) -> torch.Tensor:
    """A sparse mixture-of-experts MLP: each token runs through its top-k SwiGLU experts only.

    hidden (..., hidden); gate_up (experts, 2 * intermediate, hidden) - gate rows first, then up rows;
    down (experts, hidden, intermediate). Output has hidden's shape: sum over the chosen experts of
    weight * down(silu(gate x) * up x).
    """
    _tensor(gate_up, "gate_up", 3)
    _tensor(down, "down", 3)
    if not isinstance(hidden, torch.Tensor) or hidden.dim() < 2:
        raise CourseError("hidden must be a tensor of shape (..., hidden)")
    experts, two_i, size = gate_up.shape
    if size != hidden.shape[-1] or two_i % 2 or down.shape != (experts, size, two_i // 2):
        raise CourseError(f"expert weights do not fit: gate_up {tuple(gate_up.shape)} should be (experts, 2*I, "
                          f"{hidden.shape[-1]}) and down {tuple(down.shape)} should be (experts, "
                          f"{hidden.shape[-1]}, I)")
    if router_weight.shape[0] != experts:
        raise CourseError(f"the router scores {router_weight.shape[0]} experts but there are {experts}")
    flat = hidden.reshape(-1, size)
    _, weights, indices = route_top_k(flat, router_weight, k, normalize)
    out = torch.zeros_like(flat)
    for e in indices.unique().tolist():
        token, slot = torch.where(indices == e)
        gate, up = F.linear(flat[token], gate_up[e]).chunk(2, dim=-1)
        out.index_add_(0, token, F.linear(F.silu(gate) * up, down[e]) * weights[token, slot, None])
    return out.reshape(hidden.shape)


def load_balancing_loss(router_logits: torch.Tensor, k: int) -> torch.Tensor:
    """Switch Transformer's auxiliary loss: experts * sum_i f_i * P_i.

    f_i: share of the top-k assignments that go to expert i; P_i: mean router probability of expert i,
    over the rows of router_logits (tokens, experts). Equals k for a perfectly even router, grows when
    a few experts take most tokens.
    """
    _tensor(router_logits, "router_logits", 2)
    experts = router_logits.shape[1]
    _positive_int(k, "k (experts per token)")
    if k > experts:
        raise CourseError(f"k={k} is more than the {experts} experts")
    probs = router_logits.float().softmax(dim=-1)
    chosen = probs.topk(k, dim=-1).indices
    f = torch.zeros(experts).index_add_(0, chosen.reshape(-1).cpu(), torch.ones(chosen.numel())) / probs.shape[0]
    return experts * (f.to(probs.device) * probs.mean(dim=0)).sum()


def active_parameters(model: torch.nn.Module, experts: int, k: int) -> int:
    """Parameters one token uses: everything, except that each routed-expert tensor counts k/experts of itself.

    Works on a `meta` model. Routed experts are the fused tensors under an `.experts.` module whose first
    dimension is the number of experts (shared experts, which every token uses, count in full).
    """
    _positive_int(experts, "experts")
    _positive_int(k, "k (experts per token)")
    if k > experts:
        raise CourseError(f"k={k} is more than the {experts} experts")
    total = 0.0
    for name, p in model.named_parameters():
        if ".experts." in name and p.dim() == 3 and p.shape[0] == experts:
            total += p.numel() * k / experts
        else:
            total += p.numel()
    return int(round(total))


# ------------------------------------------------------------------------- multi-head latent attention

def rope_interleaved(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE on adjacent pairs (x0, x1), (x2, x3), ... as DeepSeek-V2 writes it (complex multiplication).

    x (..., seq, dim) with dim even; positions (seq,). Pair j turns by position * base ** (-2j / dim).
    """
    dim = x.shape[-1]
    if dim % 2:
        raise CourseError(f"RoPE needs an even head dimension, got {dim}")
    freqs = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = positions.float()[:, None] * freqs[None]
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], dim // 2, 2))
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).type_as(x)


def mla_attention(x: torch.Tensor, w: dict[str, torch.Tensor], heads: int, rank: int, nope_dim: int,
                  rope_dim: int, v_dim: int, base: float = 10000.0, eps: float = 1e-6) -> torch.Tensor:
    """Multi-head latent attention (DeepSeek-V2, no query compression), causal.

    The cache holds, per token, one latent vector c (rank) and one shared RoPE key (rope_dim) - not
    heads x (key + value). Weights in `w` (transformers' names): "q" (heads*(nope+rope), hidden),
    "kv_a" (rank + rope_dim, hidden), "kv_norm" (rank,), "kv_b" (heads*(nope+v), rank), "o" (hidden, heads*v).
    """
    _tensor(x, "x", 3)
    missing = {"q", "kv_a", "kv_norm", "kv_b", "o"} - set(w)
    if missing:
        raise CourseError(f"mla_attention needs the weights {sorted(missing)}")
    if w["kv_a"].shape[0] != rank + rope_dim or w["kv_b"].shape != (heads * (nope_dim + v_dim), rank):
        raise CourseError(f"kv_a {tuple(w['kv_a'].shape)} / kv_b {tuple(w['kv_b'].shape)} do not fit rank={rank}, "
                          f"rope_dim={rope_dim}, heads={heads}, nope_dim={nope_dim}, v_dim={v_dim}")
    if w["q"].shape[0] != heads * (nope_dim + rope_dim):
        raise CourseError(f"q {tuple(w['q'].shape)} should have heads * (nope_dim + rope_dim) = "
                          f"{heads * (nope_dim + rope_dim)} rows")
    b, t, _ = x.shape
    pos = torch.arange(t)
    q = F.linear(x, w["q"]).view(b, t, heads, nope_dim + rope_dim).transpose(1, 2)
    q_nope, q_rope = q.split([nope_dim, rope_dim], dim=-1)
    c, k_rope = F.linear(x, w["kv_a"]).split([rank, rope_dim], dim=-1)           # what the cache stores
    c = c * torch.rsqrt(c.float().pow(2).mean(-1, keepdim=True) + eps).to(c.dtype) * w["kv_norm"]
    kv = F.linear(c, w["kv_b"]).view(b, t, heads, nope_dim + v_dim).transpose(1, 2)
    k_nope, v = kv.split([nope_dim, v_dim], dim=-1)
    q_rope = rope_interleaved(q_rope, pos, base)
    k_rope = rope_interleaved(k_rope[:, None], pos, base).expand(b, heads, t, rope_dim)
    q = torch.cat([q_nope, q_rope], dim=-1)
    k = torch.cat([k_nope, k_rope], dim=-1)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=(nope_dim + rope_dim) ** -0.5)
    return F.linear(out.transpose(1, 2).reshape(b, t, heads * v_dim), w["o"])


# ---------------------------------------------------------------------------- gated DeltaNet recurrence

def gated_delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
                     state: torch.Tensor | None = None):
    """Gated DeltaNet, one token at a time: a fixed (k_dim x v_dim) state per head instead of a KV cache.

    q, k (batch, seq, heads, k_dim); v (batch, seq, heads, v_dim); g, beta (batch, seq, heads): log-decay
    (<= 0) and write strength (0..1). Per token: S = exp(g) S; S += k (beta (v - S^T k))^T; o = S^T q / sqrt(k_dim).
    Returns (outputs (batch, seq, heads, v_dim), final state (batch, heads, k_dim, v_dim)).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _tensor(t, name, 4)
    _tensor(g, "g", 3)
    _tensor(beta, "beta", 3)
    if q.shape != k.shape or v.shape[:3] != q.shape[:3] or g.shape != q.shape[:3] or beta.shape != q.shape[:3]:
        raise CourseError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                          f"g {tuple(g.shape)}, beta {tuple(beta.shape)} (q, k, v share batch, seq, heads)")
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    s = torch.zeros(b, h, dk, dv) if state is None else state.float()
    q, k, v, g, beta = (x.float() for x in (q, k, v, g, beta))
    q = q / dk ** 0.5
    out = torch.zeros(b, t, h, dv)
    for i in range(t):
        s = s * g[:, i].exp()[..., None, None]
        delta = beta[:, i, :, None] * (v[:, i] - torch.einsum("bhkv,bhk->bhv", s, k[:, i]))
        s = s + k[:, i, :, :, None] * delta[:, :, None, :]
        out[:, i] = torch.einsum("bhkv,bhk->bhv", s, q[:, i])
    return out, s


# ------------------------------------------------------------------------ memory against the context

def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, bytes_per_element: float = 2.0) -> float:
    """KV cache of ordinary attention (MHA / GQA / MQA): keys and values of every layer, per token."""
    for what, value in (("layers", layers), ("kv_heads", kv_heads), ("head_dim", head_dim)):
        _positive_int(value, what, 0 if what == "layers" else 1)
    return 2 * layers * kv_heads * head_dim * bytes_per_element


def mla_bytes_per_token(layers: int, rank: int, rope_dim: int, bytes_per_element: float = 2.0) -> float:
    """MLA's cache per token: one latent (rank) and one shared RoPE key (rope_dim) per layer."""
    _positive_int(layers, "layers", 0)
    _positive_int(rank, "rank")
    _positive_int(rope_dim, "rope_dim", 0)
    return layers * (rank + rope_dim) * bytes_per_element


def layer_kinds(card) -> list[str]:
    """Each layer's kind, as in transformers' `layer_types` (attention, sliding, or a recurrent kind)."""
    from .catalogue import get

    card = get(card)
    c = card.config
    n = card.layers
    if c.get("model_type") == "gemma3n_text":                     # 4 local : 1 global, then shared caches
        kinds = list(c.get("layer_types") or ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention"
                                              for i in range(n)])
        shared = int(c.get("num_kv_shared_layers", 0))
        return kinds[:n - shared] + ["kv_shared"] * shared
    if c.get("layer_types"):
        return list(c["layer_types"])
    if c.get("full_attn_idxs") is not None:                       # LFM2: attention at these layers, conv elsewhere
        return ["full_attention" if i in c["full_attn_idxs"] else "conv" for i in range(n)]
    if c.get("full_attention_interval"):                          # Qwen3.5: 3 Gated DeltaNet : 1 attention
        every = int(c["full_attention_interval"])
        return ["full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(n)]
    if c.get("model_type") == "falcon_h1":                        # every layer: attention beside Mamba-2
        return ["attention+mamba"] * n
    if c.get("model_type") == "gemma3_text":                      # 5 local : 1 global
        pattern = c.get("sliding_window_pattern", 6)
        return ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n)]
    if card.sliding_window:
        return ["sliding_attention"] * n
    return ["full_attention"] * n


def _recurrent_state_elements(card, kind: str) -> int:
    c = card.config
    if kind == "conv":                                            # LFM2 short convolution: last L tokens
        return card.hidden_size * int(c.get("conv_L_cache", 3))
    if kind == "linear_attention":                                # Gated DeltaNet: conv buffer + (key x value) state
        kh, vh = int(c["linear_num_key_heads"]), int(c["linear_num_value_heads"])
        dk, dv = int(c["linear_key_head_dim"]), int(c["linear_value_head_dim"])
        return (2 * kh * dk + vh * dv) * int(c.get("linear_conv_kernel_dim", 4)) + vh * dk * dv
    if kind == "mamba":                                           # Mamba-2: conv buffer + SSM state
        inner = int(c.get("mamba_d_ssm") or int(c.get("mamba_expand", 2)) * card.hidden_size)
        groups, d_state = int(c.get("mamba_n_groups", 1)), int(c.get("mamba_d_state", 128))
        conv = (inner + 2 * groups * d_state) * int(c.get("mamba_d_conv", 4))
        return conv + int(c["mamba_n_heads"]) * int(c["mamba_d_head"]) * d_state
    raise CourseError(f"{card.name}: no state size known for layer kind {kind!r}")


def cache_bytes(name, context: int, bytes_per_element: float = 2.0) -> dict[str, float]:
    """What a catalogued decoder keeps while generating with `context` tokens, batch 1.

    Returns {"kv": bytes that grow with the context (full-attention layers; sliding layers up to their
    window; MLA's latent; Gemma 3n's shared-KV layers add none), "state": fixed bytes of the recurrent
    layers (Mamba-2 in Granite 4 and beside attention in Falcon-H1, Gated DeltaNet in Qwen3.5, LFM2's
    convolution)}.
    """
    from .catalogue import get

    card = get(name)
    _positive_int(context, "context", 0)
    if card.family == "encoder":
        return {"kv": 0.0, "state": 0.0}
    c = card.config
    kv = state = 0.0
    for kind in layer_kinds(card):
        if kind in SHARED_LAYERS:                                 # reads another layer's cache: adds nothing
            continue
        if kind in PARALLEL_LAYERS:                               # its Mamba-2 state, then its attention cache
            state += _recurrent_state_elements(card, "mamba") * bytes_per_element
            kind = "full_attention"
        if kind in RECURRENT_LAYERS:
            state += _recurrent_state_elements(card, kind) * bytes_per_element
            continue
        tokens = min(context, card.sliding_window) if kind in SLIDING_LAYERS and card.sliding_window else context
        if c.get("kv_lora_rank"):
            kv += mla_bytes_per_token(1, int(c["kv_lora_rank"]), int(c["qk_rope_head_dim"]), bytes_per_element) * tokens
        else:
            kv += kv_bytes_per_token(1, card.kv_heads, card.head_dim, bytes_per_element) * tokens
    return {"kv": kv, "state": state}

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
