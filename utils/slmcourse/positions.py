"""Lesson 6's length-extrapolation experiment in miniature (Press et al. 2022, "Train Short, Test Long").

Tiny decoder-only language models that differ ONLY in how they inject position - learned absolute
embeddings (GPT-2/OPT/BERT), rotary embeddings (Llama) or ALiBi (MPT/BLOOM), plus no position at all
- are trained on short sequences of a synthetic language and evaluated on longer ones. The attention
inside is the course's own `slmcourse.attention` code.

The language: a seeded random second-order Markov chain (each pair of previous tokens allows a few
next tokens). It needs only local context, like much of natural text, and its entropy is the best
loss any model can reach, so the numbers have a floor to compare with.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn

from .attention import alibi_bias, causal_mask, rope, scaled_dot_product_attention
from .errors import CourseError

POSITION_KINDS = ("learned", "rope", "alibi", "none")


# ----------------------------------------------------------------------------------- data

@lru_cache(maxsize=8)
def _markov_table(vocab: int, choices: int, seed: int) -> torch.Tensor:
    if vocab < 2 or not 1 <= choices <= vocab:
        raise CourseError(f"need vocab >= 2 and 1 <= choices <= vocab, got vocab={vocab}, choices={choices}")
    g = torch.Generator().manual_seed(seed)
    allowed = torch.rand(vocab, vocab, vocab, generator=g).argsort(dim=-1)[..., :choices]
    weights = torch.rand(vocab, vocab, choices, generator=g) + 0.5
    probs = torch.zeros(vocab, vocab, vocab)
    probs.scatter_(-1, allowed, weights / weights.sum(-1, keepdim=True))
    return probs


@dataclass(frozen=True)
class MarkovLanguage:
    """A random second-order Markov chain: P(next | previous two tokens), `choices` allowed next tokens."""

    vocab: int = 16
    choices: int = 3
    seed: int = 0

    @property
    def table(self) -> torch.Tensor:
        """probs[a, b, c] = P(next = c | previous two = a, b); (vocab, vocab, vocab), rows sum to 1."""
        return _markov_table(self.vocab, self.choices, self.seed)

    def entropy(self) -> float:
        """The best achievable loss (nats per token): the chain's entropy rate under its stationary law."""
        probs = self.table
        # stationary distribution over pairs by power iteration
        pair = torch.full((self.vocab, self.vocab), 1.0 / self.vocab ** 2)
        for _ in range(200):
            pair = torch.einsum("ab,abc->bc", pair, probs)
        h = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)
        return float((pair * h).sum())

    def sample(self, batch: int, length: int, seed: int) -> torch.Tensor:
        """`batch` sequences of `length` tokens (long tensor), reproducible from `seed`."""
        if length < 3:
            raise CourseError(f"sequences need at least 3 tokens, got {length}")
        probs = self.table
        g = torch.Generator().manual_seed(seed)
        out = torch.empty(batch, length, dtype=torch.long)
        out[:, :2] = torch.randint(self.vocab, (batch, 2), generator=g)
        for t in range(2, length):
            p = probs[out[:, t - 2], out[:, t - 1]]
            out[:, t] = torch.multinomial(p, 1, generator=g)[:, 0]
        return out


# ----------------------------------------------------------------------------------- model

class TinyAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, position: str):
        super().__init__()
        self.heads, self.head_dim, self.position = heads, d_model // heads, position
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        bias = None
        if self.position == "rope":
            pos = torch.arange(s)
            q, k = rope(q, pos), rope(k, pos)
        elif self.position == "alibi":
            bias = alibi_bias(self.heads, s)
        y = scaled_dot_product_attention(q, k, v, mask=causal_mask(s), bias=bias)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class TinyBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, position: str):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = TinyAttention(d_model, heads, position)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    """A decoder-only transformer of a few thousand parameters; `position` picks how it knows where it is.

    learned: a table of `max_len` position vectors added to the token embeddings (cannot go further);
    rope: queries and keys rotated by position; alibi: a linear distance penalty on the scores;
    none: only the causal mask (which, it turns out, leaks some position information by itself).
    """

    def __init__(self, vocab: int, position: str, d_model: int = 64, heads: int = 4, layers: int = 2,
                 max_len: int = 32):
        super().__init__()
        if position not in POSITION_KINDS:
            raise CourseError(f"unknown position kind {position!r}; choose one of {', '.join(POSITION_KINDS)}")
        if d_model % heads:
            raise CourseError(f"d_model {d_model} is not divisible by {heads} heads")
        self.position, self.max_len = position, max_len
        self.embed = nn.Embedding(vocab, d_model)
        self.pos_embed = nn.Embedding(max_len, d_model) if position == "learned" else None
        self.blocks = nn.ModuleList(TinyBlock(d_model, heads, position) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        s = tokens.shape[1]
        x = self.embed(tokens)
        if self.pos_embed is not None:
            if s > self.max_len:
                raise CourseError(f"learned positions exist only for {self.max_len} positions; "
                                  f"a {s}-token sequence has no embedding for positions {self.max_len}..{s - 1}")
            x = x + self.pos_embed(torch.arange(s))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


# ----------------------------------------------------------------------------------- experiment

@dataclass
class ExtrapolationResult:
    train_len: int
    lengths: list[int]
    loss: dict[str, list[float]]  # position kind -> mean loss at each evaluation length (nan: cannot run)
    train_curves: dict[str, list[float]]
    floor: float  # entropy of the language: the best possible loss
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self, decimals: int = 1) -> str:
        head = "position   " + "".join(f"{n:>8}" for n in self.lengths)
        rows = [head]
        for kind, values in self.loss.items():
            cells = "".join(f"{'n/a':>8}" if math.isnan(v) else f"{v:>8.{decimals}f}" for v in values)
            rows.append(f"{kind:<11}" + cells)
        return "\n".join(rows)


def train_tiny(kind: str, language: MarkovLanguage, train_len: int = 32, steps: int = 500, batch: int = 32,
               seed: int = 0, lr: float = 3e-3, progress=None) -> tuple[TinyLM, list[float]]:
    """Train one TinyLM on fresh batches of `train_len` tokens; returns the model and its loss curve."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CourseError(f"steps must be a whole number of at least 1, got {steps!r}")
    if progress is not None and (isinstance(progress, (dict, str, bytes, int, float, list, tuple))
                                 or not callable(getattr(progress, "update", None))):
        raise CourseError(f"progress must be None or a progress bar with an update(n) method (e.g. tqdm), "
                          f"got {progress!r} ({type(progress).__name__})")
    torch.manual_seed(seed)
    model = TinyLM(language.vocab, kind, max_len=train_len)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)  # linear warm-up, then cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: (i + 1) / warmup if i < warmup else 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(1, steps - warmup))))
    curve = []
    data = language.sample(steps * batch, train_len + 1, seed=10_000 + seed)  # all training text at once
    for step in range(steps):
        tokens = data[step * batch:(step + 1) * batch]
        logits = model(tokens[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        curve.append(loss.item())
        if progress is not None:
            progress.update(1)
    return model.eval(), curve


@torch.no_grad()
def loss_at_length(model: TinyLM, language: MarkovLanguage, length: int, batch: int = 16, seed: int = 1) -> float:
    """Mean next-token loss over held-out sequences of `length` tokens (nan if the model cannot run them)."""
    if model.pos_embed is not None and length > model.max_len:
        return float("nan")
    tokens = language.sample(batch, length + 1, seed=seed)
    logits = model(tokens[:, :-1])
    return float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)))


def extrapolation_experiment(kinds=("learned", "rope", "alibi", "none"), train_len: int = 32,
                             lengths=(16, 32, 64, 128, 256, 512), steps: int = 500, seed: int = 0,
                             language: MarkovLanguage | None = None, progress: bool = True) -> ExtrapolationResult:
    """Train one tiny model per position kind on `train_len` tokens and measure loss at each length."""
    from . import checks  # issue 20: every argument checked BEFORE minutes of training

    kinds = [checks.one_of("kinds", kind, POSITION_KINDS, label="position kind")
             for kind in checks.string_list("kinds", kinds, allow_empty=False)]
    if isinstance(lengths, (str, bytes)) or not hasattr(lengths, "__iter__") or not list(lengths):
        raise CourseError(f"lengths must be a non-empty list of whole numbers, got {lengths!r}")
    lengths = [checks.whole_number("lengths", n, minimum=1, maximum=100_000) for n in lengths]
    checks.whole_number("train_len", train_len, minimum=1, maximum=100_000)
    checks.whole_number("steps", steps, minimum=1, maximum=10_000_000)
    checks.whole_number("seed", seed, minimum=0)
    if language is not None and not isinstance(language, MarkovLanguage):
        raise CourseError(f"language must be a MarkovLanguage (or None), got {type(language).__name__}")
    language = language or MarkovLanguage(seed=seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps * len(kinds), desc="training tiny models", leave=False)
    loss, curves, seconds = {}, {}, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train faster on one thread than on two
    try:
        for kind in kinds:
            start = time.perf_counter()
            model, curve = train_tiny(kind, language, train_len=train_len, steps=steps, seed=seed, progress=bar)
            loss[kind] = [loss_at_length(model, language, n) for n in lengths]
            curves[kind] = curve
            seconds[kind] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    if bar is not None:
        bar.close()
    return ExtrapolationResult(train_len, list(lengths), loss, curves, language.entropy(), seconds)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
