"""Speculative decoding: a cheap draft proposes k tokens, the target model checks them all in one pass.

Decoding a small model on a CPU is limited by memory bandwidth: each step reads every weight once to
produce one token. A forward pass over k + 1 tokens reads the weights once too, and costs little more
than a pass over one token. Speculative decoding (Leviathan, Kalman & Matias 2023; Chen et al. 2023)
turns that into speed:

1. a **draft** (a much smaller model sharing the target's tokenizer, or no model at all: prompt lookup)
   proposes k tokens, one at a time, cheaply;
2. the **target** runs ONE forward pass over the k proposals and gets its own prediction at each of
   the k + 1 positions;
3. greedy: the longest prefix of proposals equal to the target's own argmax is accepted, plus the
   target's token at the first disagreement (or a bonus token after k acceptances). The output is
   exactly the target's greedy output, whatever the draft proposes;
4. sampling: each proposal x ~ q is accepted with probability min(1, p(x) / q(x)); on rejection a token
   is drawn from norm(max(0, p - q)). The accepted tokens are distributed exactly as p
   (`rejection_sample`).

`speculative_greedy` and `prompt_lookup_greedy` work with a KV cache on any causal LM of transformers
(batch of one). `expected_tokens_per_pass` and `expected_speedup` are Leviathan et al.'s formulas.
`load_draft` gives lesson 8's distilled student (trained once with lesson 8's recipe, then cached).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CourseError

# Lesson 8's student: the same Llama architecture and tokenizer as SmolLM2, 2 layers of width 64.
DRAFT_CONFIG = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2)
# Lesson 8's recipe (sequence-level + logit distillation): top-32 soft targets at T = 2, alpha = 0.5, 64-token blocks.
DRAFT_RECIPE = dict(corpus="distill_train.txt", block=64, top_k=32, temperature=2.0, alpha=0.5, steps=150,
                    batch=8, lr=3e-3, warmup=10, seed=0)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise CourseError(f"k (tokens drafted per round) must be a whole number >= 1, got {k!r}")
    return k


def _check_new(max_new_tokens: int) -> int:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise CourseError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
    return max_new_tokens


def _ids_list(input_ids) -> list[int]:
    if torch.is_tensor(input_ids):
        if input_ids.ndim == 2:
            if input_ids.shape[0] != 1:
                raise CourseError("speculative decoding here works on one sequence (batch of 1)")
            input_ids = input_ids[0]
        input_ids = input_ids.tolist()
    ids = list(input_ids)
    if not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
        raise CourseError("input_ids must be a non-empty sequence of token ids")
    return ids


# ---------------------------------------------------------------------------------------------
# Sampling: the rejection step that keeps the target's distribution
# ---------------------------------------------------------------------------------------------
def rejection_sample(p: torch.Tensor, q: torch.Tensor, generator: torch.Generator | None = None) -> tuple[int, bool]:
    """One speculative sampling step: draw x ~ q, keep it with probability min(1, p(x)/q(x)), else redraw.

    `p` (target) and `q` (draft) are probability vectors over the same vocabulary. Returns
    (token, accepted). The token is distributed exactly as p (Leviathan et al. 2023, appendix A.1).
    """
    for name, v in (("p", p), ("q", q)):
        if not torch.is_tensor(v) or v.ndim != 1 or not torch.is_floating_point(v) or (v < 0).any():
            raise CourseError(f"{name} must be a 1-D tensor of probabilities (non-negative floats)")
        if abs(float(v.sum()) - 1) > 1e-4:
            raise CourseError(f"{name} must sum to 1 (a probability distribution), sums to {float(v.sum()):.4f}")
    if p.shape != q.shape:
        raise CourseError(f"p and q must cover the same vocabulary, got {tuple(p.shape)} and {tuple(q.shape)}")
    x = int(torch.multinomial(q, 1, generator=generator))
    if torch.rand((), generator=generator) < min(1.0, float(p[x] / q[x])):
        return x, True
    residual = (p - q).clamp_min(0)
    return int(torch.multinomial(residual / residual.sum(), 1, generator=generator)), False


# ---------------------------------------------------------------------------------------------
# Greedy speculative decoding with KV caches
# ---------------------------------------------------------------------------------------------
@dataclass
class SpeculativeResult:
    """What one speculative run produced, and how much of the draft survived."""
    tokens: list[int]                 # the new tokens only
    rounds: int = 0                   # target forward passes after the prompt
    drafted: int = 0                  # tokens proposed by the draft
    accepted: int = 0                 # proposals the target agreed with
    seconds: float = 0.0
    per_round: list[int] = field(default_factory=list)   # accepted proposals in each round
    rejected: int = 0                 # rounds that ended on a rejected proposal (the rest accepted all k)

    @property
    def acceptance(self) -> float:
        """Share of the drafted tokens the target accepted (proposals after a rejection count as not accepted)."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def alpha(self) -> float:
        """Leviathan et al.'s alpha: the chance that a proposal the target examines is accepted.

        Proposals after the first rejection of a round are never examined, so `acceptance` falls with k
        even for a fixed alpha (about alpha (1 - alpha^k) / (k (1 - alpha)) of the drafted tokens); alpha
        counts each round's accepted proposals and its one rejection: accepted / (accepted + rejected).
        """
        examined = self.accepted + self.rejected
        return self.accepted / examined if examined else 0.0

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per target forward pass (1.0 for ordinary decoding)."""
        return len(self.tokens) / self.rounds if self.rounds else 0.0


class _Runner:
    """A model with its KV cache: feed it tokens, it returns the logits of each fed position."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model, self.cache, self.length = model, DynamicCache(), 0

    @torch.no_grad()
    def feed(self, tokens: list[int]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        out = self.model(input_ids=torch.tensor([tokens], device=device), past_key_values=self.cache, use_cache=True)
        self.cache, self.length = out.past_key_values, self.length + len(tokens)
        return out.logits[0].float()

    def crop(self, length: int) -> None:
        if length < self.length:
            self.cache.crop(length - self.length)       # a negative count: drop that many tokens from the end
            self.length = length


def _verify(target: _Runner, sequence: list[int], proposals: list[int]) -> list[int]:
    """One target pass over the proposals; returns the accepted proposals plus the target's next token."""
    logits = target.feed(sequence[target.length:] + proposals)[-(len(proposals) + 1):]
    predicted = logits.argmax(-1).tolist()             # the target's own greedy choice at each position
    n = 0
    while n < len(proposals) and proposals[n] == predicted[n]:
        n += 1
    return proposals[:n] + [predicted[n]]


def speculative_greedy(target, draft, input_ids, max_new_tokens: int = 32, k: int = 4,
                       eos_token_id: int | None = None) -> SpeculativeResult:
    """Greedy decoding of `target`, sped up by `draft` proposing k tokens per round.

    The tokens are exactly `target`'s greedy output (the draft only changes how many target passes it
    takes). Both models must share a tokenizer. Batch of one.
    """
    _check_k(k)
    _check_new(max_new_tokens)
    sequence = _ids_list(input_ids)
    prompt_len = len(sequence)
    result = SpeculativeResult([])
    t_run, d_run = _Runner(target), _Runner(draft)
    start = time.perf_counter()
    t_run.feed(sequence[:-1])                          # both caches hold all but the last token
    d_run.feed(sequence[:-1])
    while len(sequence) - prompt_len < max_new_tokens:
        budget = min(k, max_new_tokens - (len(sequence) - prompt_len) - 1)
        proposals = []
        for _ in range(budget):                        # the draft proposes greedily, one token at a time
            logits = d_run.feed((sequence + proposals)[d_run.length:])
            proposals.append(int(logits[-1].argmax()))
        new = _verify(t_run, sequence, proposals)
        result.rounds += 1
        result.drafted += len(proposals)
        result.accepted += len(new) - 1
        result.rejected += int(len(new) - 1 < len(proposals))
        result.per_round.append(len(new) - 1)
        sequence += new
        t_run.crop(len(sequence) - 1)                  # forget the rejected proposals' keys and values
        d_run.crop(min(d_run.length, len(sequence) - 1))
        if eos_token_id is not None and eos_token_id in new:
            sequence = sequence[:len(sequence) - len(new) + new.index(eos_token_id) + 1]
            break
    result.tokens = sequence[prompt_len:prompt_len + max_new_tokens]
    result.seconds = time.perf_counter() - start
    return result


def lookup_proposals(sequence: list[int], k: int, ngram: int = 3) -> list[int]:
    """Prompt lookup: find the last `ngram` tokens earlier in the sequence and propose what followed them.

    Tries n-grams of length `ngram` down to 1, most recent match first; returns [] when none repeats.
    """
    _check_k(k)
    for n in range(min(ngram, len(sequence) - 1), 0, -1):
        tail = sequence[-n:]
        for start in range(len(sequence) - n - 1, -1, -1):
            if sequence[start:start + n] == tail:
                return sequence[start + n:start + n + k]
    return []


def prompt_lookup_greedy(target, input_ids, max_new_tokens: int = 32, k: int = 4, ngram: int = 3,
                         eos_token_id: int | None = None) -> SpeculativeResult:
    """Greedy decoding of `target` with prompt-lookup drafts (no draft model): exactly target's greedy output."""
    _check_k(k)
    _check_new(max_new_tokens)
    sequence = _ids_list(input_ids)
    prompt_len = len(sequence)
    result = SpeculativeResult([])
    t_run = _Runner(target)
    start = time.perf_counter()
    t_run.feed(sequence[:-1])
    while len(sequence) - prompt_len < max_new_tokens:
        budget = min(k, max_new_tokens - (len(sequence) - prompt_len) - 1)
        proposals = lookup_proposals(sequence, k, ngram)[:budget] if budget else []
        new = _verify(t_run, sequence, proposals)
        result.rounds += 1
        result.drafted += len(proposals)
        result.accepted += len(new) - 1
        result.rejected += int(len(new) - 1 < len(proposals))
        result.per_round.append(len(new) - 1)
        sequence += new
        t_run.crop(len(sequence) - 1)
        if eos_token_id is not None and eos_token_id in new:
            sequence = sequence[:len(sequence) - len(new) + new.index(eos_token_id) + 1]
            break
    result.tokens = sequence[prompt_len:prompt_len + max_new_tokens]
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------------------------------------
# Leviathan et al.'s expectations (i.i.d. acceptance rate alpha per proposal)
# ---------------------------------------------------------------------------------------------
def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise CourseError(f"acceptance rate alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def expected_tokens_per_pass(alpha: float, k: int) -> float:
    """Expected new tokens per target pass: (1 - alpha^(k+1)) / (1 - alpha)  (Leviathan et al. eq. 1)."""
    alpha, k = _check_alpha(alpha), _check_k(k)
    return float(k + 1) if alpha == 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


def expected_speedup(alpha: float, k: int, cost_ratio: float) -> float:
    """Expected speed-up over plain decoding: tokens per pass / (k * c + 1), c = draft step cost / target step cost.

    Assumes a target pass over k + 1 tokens costs the same as over one (memory-bound decoding).
    """
    if isinstance(cost_ratio, bool) or not isinstance(cost_ratio, (int, float)) or cost_ratio < 0:
        raise CourseError(f"cost_ratio (draft step time / target step time) must be a number >= 0, got {cost_ratio!r}")
    return expected_tokens_per_pass(alpha, k) / (k * cost_ratio + 1)


# ---------------------------------------------------------------------------------------------
# The draft model: lesson 8's distilled student, trained once and cached
# ---------------------------------------------------------------------------------------------
def draft_path() -> Path:
    """Where the trained draft is cached (next to the converted bundled models)."""
    from .bundled import cache_dir

    return cache_dir() / "draft-student"


SHIPPED_DRAFT = Path(__file__).resolve().parent / "data" / "draft"


def shipped_draft() -> Path | None:
    """The draft the course ships (trained by `python -m slmcourse.speculative --retrain` with DRAFT_RECIPE on the
    course's machine), if its recipe is today's and its SHA-256 matches data/draft/SHA256SUMS; otherwise None."""
    import hashlib

    weights, recipe = SHIPPED_DRAFT / "draft-student.safetensors", SHIPPED_DRAFT / "recipe.json"
    sums = SHIPPED_DRAFT / "SHA256SUMS"
    if not (weights.is_file() and recipe.is_file() and sums.is_file()):
        return None
    if json.loads(recipe.read_text()) != {"config": DRAFT_CONFIG, "recipe": DRAFT_RECIPE}:
        return None
    expected = sums.read_text().split()[0]
    if hashlib.sha256(weights.read_bytes()).hexdigest() != expected:
        raise CourseError(f"{weights} does not match its SHA-256 in {sums}: the file is damaged; "
                          "restore it from the repository or retrain with `python -m slmcourse.speculative --retrain`")
    return weights


def train_draft(teacher, tokenizer, progress: bool = True):
    """Lesson 8's student trained with lesson 8's recipe (DRAFT_RECIPE) on the teacher-written corpus."""
    from . import distill, training
    from .models import scaled_down

    r = DRAFT_RECIPE
    training.seed_everything(r["seed"], threads=2)
    blocks = training.token_blocks(tokenizer, training.documents(training.read_data(r["corpus"])), r["block"])
    targets = distill.precompute_teacher(teacher, blocks, k=r["top_k"], temperature=r["temperature"],
                                         progress=progress)
    student = scaled_down("smollm2-135m", seed=r["seed"], **DRAFT_CONFIG).train()
    schedule = training.batch_schedule(len(blocks), r["batch"], r["steps"], seed=r["seed"])

    def step_loss(step):
        idx = schedule[step]
        return distill.causal_lm_distill_step(student, blocks[idx], targets[idx], r["alpha"])

    training.train(student, step_loss, r["steps"], lr=r["lr"], warmup=r["warmup"], name="draft student",
                   progress=progress)
    return student.eval()


def load_draft(teacher=None, tokenizer=None, progress: bool = True):
    """Lesson 8's distilled student, as a draft for SmolLM2: loaded from the cache, or trained once (minutes).

    Training needs the teacher (SmolLM2) and its tokenizer; afterwards they are not needed.
    """
    from safetensors.torch import load_file, save_file

    from .models import scaled_down

    folder = draft_path()
    weights, manifest = folder / "model.safetensors", folder / "recipe.json"
    recipe = {"config": DRAFT_CONFIG, "recipe": DRAFT_RECIPE}
    if weights.is_file() and manifest.is_file() and json.loads(manifest.read_text()) == recipe:
        student = scaled_down("smollm2-135m", seed=0, **DRAFT_CONFIG)
        state = load_file(str(weights))
        student.load_state_dict(state, strict=False)
        student.tie_weights()
        return student.eval()
    shipped = shipped_draft()
    if shipped is not None:
        student = scaled_down("smollm2-135m", seed=0, **DRAFT_CONFIG)
        student.load_state_dict(load_file(str(shipped)), strict=False)
        student.tie_weights()
        return student.eval()
    if teacher is None or tokenizer is None:
        raise CourseError("the draft student is not trained yet: call load_draft(teacher, tokenizer) once with "
                          "SmolLM2 and its tokenizer (it trains with lesson 8's recipe, a few minutes)")
    student = train_draft(teacher, tokenizer, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in student.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(weights))
    manifest.write_text(json.dumps(recipe))
    return student


def main() -> int:
    """`python -m slmcourse.speculative`: train and cache the draft student (what set-up runs)."""
    import sys

    from .models import load

    retrain = "--retrain" in sys.argv[1:]
    if retrain:
        # train with the recipe and write the result into the cache; copy it to data/draft/ to ship it
        teacher, tok = load("smollm2-135m", device="cpu")
        start = time.perf_counter()
        student = train_draft(teacher, tok)
        folder = draft_path()
        folder.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in student.state_dict().items() if k != "lm_head.weight"},
                  str(folder / "model.safetensors"))
        (folder / "recipe.json").write_text(json.dumps({"config": DRAFT_CONFIG, "recipe": DRAFT_RECIPE}))
        print(f"draft student: trained in {time.perf_counter() - start:.0f} s -> {folder}")
        return 0
    if shipped_draft() is not None:
        print(f"draft student: shipped with the course -> {SHIPPED_DRAFT}")
        return 0
    if draft_path().joinpath("model.safetensors").is_file():
        try:
            load_draft()
            print(f"draft student: already trained -> {draft_path()}")
            return 0
        except CourseError:
            pass
    teacher, tok = load("smollm2-135m", device="cpu")
    start = time.perf_counter()
    load_draft(teacher, tok)
    print(f"draft student: trained in {time.perf_counter() - start:.0f} s -> {draft_path()}")
    return 0


from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())


if __name__ == "__main__":
    raise SystemExit(main())
