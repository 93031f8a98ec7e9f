"""The generation loop from scratch: greedy, temperature, top-k, top-p, repetition penalty, stop tokens.

A causal language model only ever answers one question: "given these tokens, how likely is each
possible next token?" (its logits for the last position). Generating text is a loop around that
question: pick a token from the distribution, append it, ask again. Everything that makes generation
interesting happens in the small step between the logits and the chosen token, written here as plain
functions on a 1-D tensor of logits:

    repetition penalty -> temperature -> top-k -> top-p -> (argmax | sample)

That is the order `transformers` applies them in, and each function does exactly what its
`transformers` counterpart does (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper), so with the same seed `generate()` below picks the same tokens
as `model.generate()`. The tests check it on the real SmolLM2.

`generate()` runs with a KV cache (each step feeds only the new token and reuses the keys and values
of all earlier tokens) or without one (each step re-reads the whole sequence): same tokens, very
different cost. Works on any causal LM of `transformers` (batch of one sequence).
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from .errors import CourseError

STRATEGIES = ("greedy", "sample")


# ---------------------------------------------------------------------------------------------
# The pure filters: logits in, logits out. Removed tokens get -inf (probability exactly 0).
# ---------------------------------------------------------------------------------------------

def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 1 or logits.numel() == 0:
        raise CourseError("logits must be a non-empty 1-D tensor (one score per vocabulary entry), "
                          f"got {type(logits).__name__}{tuple(logits.shape) if isinstance(logits, torch.Tensor) else ''}")
    if not torch.is_floating_point(logits):
        raise CourseError("logits must be floating point numbers")
    return logits


def check_settings(strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                   repetition_penalty: float = 1.0, max_new_tokens: int | None = None) -> None:
    """Raise CourseError with a clear message for settings that make no sense."""
    if strategy not in STRATEGIES:
        raise CourseError(f"unknown strategy {strategy!r}; choose 'greedy' (always the most likely token) "
                          f"or 'sample' (draw from the filtered distribution)")
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    _check_penalty(repetition_penalty)
    if max_new_tokens is not None and (not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool)
                                       or max_new_tokens < 1):
        raise CourseError(f"max_new_tokens must be a whole number of at least 1, got {max_new_tokens!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_temperature(temperature: float) -> None:
    if not _is_number(temperature) or temperature <= 0:
        raise CourseError(f"temperature must be a number > 0, got {temperature!r} (for 'always the most likely "
                          f"token' use the greedy strategy instead of temperature 0)")


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise CourseError(f"top_k must be a whole number >= 0 (0 switches it off), got {top_k!r}")


def _check_top_p(top_p: float) -> None:
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise CourseError(f"top_p must be a number in (0, 1] (1 switches it off), got {top_p!r}")


def _check_penalty(penalty: float) -> None:
    if not _is_number(penalty) or penalty <= 0:
        raise CourseError(f"repetition_penalty must be a number > 0 (1 switches it off), got {penalty!r}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by the temperature: < 1 sharpens the distribution, > 1 flattens it."""
    _check_logits(logits)
    _check_temperature(temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest-scoring tokens (ties with the k-th are kept too); k = 0 keeps all."""
    _check_logits(logits)
    _check_top_k(k)
    if k == 0 or k >= logits.numel():
        return logits.clone()
    kth_best = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth_best, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities add up to >= p.

    The most likely token is always kept, so even a tiny p leaves one candidate. p = 1 keeps all.
    """
    _check_logits(logits)
    _check_top_p(p)
    if p >= 1:
        return logits.clone()
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - p)           # the unlikely tail whose total mass is <= 1 - p
    remove_sorted[-1] = False                       # never remove the most likely token
    remove = remove_sorted.scatter(0, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, previous_ids: Iterable[int] | torch.Tensor,
                             penalty: float) -> torch.Tensor:
    """Make every token already in the sequence less likely (Keskar et al. 2019, CTRL).

    A positive logit is divided by the penalty, a negative one multiplied by it, so with penalty > 1
    a seen token always loses ground. penalty = 1 changes nothing.
    """
    _check_logits(logits)
    _check_penalty(penalty)
    ids = torch.as_tensor(list(previous_ids) if not isinstance(previous_ids, torch.Tensor) else previous_ids,
                          dtype=torch.long, device=logits.device).flatten()
    if penalty == 1 or ids.numel() == 0:
        return logits.clone()
    if ids.min() < 0 or ids.max() >= logits.numel():
        raise CourseError(f"previous token ids must lie in [0, {logits.numel()}), the vocabulary")
    scores = logits.gather(0, ids)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(0, ids, scores)


def filter_stages(logits: torch.Tensor, previous_ids: Iterable[int] | torch.Tensor = (), *,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  repetition_penalty: float = 1.0) -> "OrderedDict[str, torch.Tensor]":
    """The next-token probabilities before and after each filter, in the order generation applies them.

    Returns {"model": ..., "repetition penalty": ..., "temperature": ..., "top-k": ..., "top-p": ...}
    (each a probability vector over the vocabulary, float32). The last entry is what sampling draws from.
    """
    _check_logits(logits)
    check_settings("sample", temperature, top_k, top_p, repetition_penalty)
    stages = OrderedDict()
    scores = logits.float()
    stages["model"] = scores.softmax(-1)
    scores = apply_repetition_penalty(scores, previous_ids, repetition_penalty)
    stages["repetition penalty"] = scores.softmax(-1)
    scores = apply_temperature(scores, temperature)
    stages["temperature"] = scores.softmax(-1)
    scores = top_k_filter(scores, top_k)
    stages["top-k"] = scores.softmax(-1)
    scores = top_p_filter(scores, top_p)
    stages["top-p"] = scores.softmax(-1)
    return stages


def process_logits(logits: torch.Tensor, previous_ids: Iterable[int] | torch.Tensor = (), *,
                   strategy: str = "greedy", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                   repetition_penalty: float = 1.0) -> torch.Tensor:
    """The scores the next token is chosen from. Greedy uses only the repetition penalty (as
    `transformers` does: temperature, top-k and top-p cannot change which token is the most likely)."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        check_settings(strategy)  # an unknown strategy is refused, never silently greedy (issue 20)
    scores = apply_repetition_penalty(logits, previous_ids, repetition_penalty)
    if strategy == "sample":
        scores = top_p_filter(top_k_filter(apply_temperature(scores, temperature), top_k), top_p)
    return scores


def choose_token(scores: torch.Tensor, strategy: str = "greedy",
                 generator: torch.Generator | None = None) -> int:
    """Greedy: the index of the highest score. Sample: a draw from softmax(scores)."""
    _check_logits(scores)
    if strategy == "greedy":
        return int(torch.argmax(scores))
    if strategy == "sample":
        probs = scores.float().softmax(-1)
        return int(torch.multinomial(probs, 1, generator=generator))
    check_settings(strategy)
    raise AssertionError  # unreachable


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

@dataclass
class GenerationResult:
    """What `generate` returns: the prompt's and the new token ids, why it stopped, how long it took."""

    prompt_ids: list[int]
    new_ids: list[int]
    stop_reason: str            # "stop token" or "max_new_tokens"
    seconds: float
    forward_passes: int
    tokens_fed: int             # tokens pushed through the model in all (the work done)
    settings: dict = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids

    @property
    def tokens_per_second(self) -> float:
        return len(self.new_ids) / self.seconds if self.seconds > 0 else float("inf")


def _prompt_ids(input_ids) -> list[int]:
    if isinstance(input_ids, torch.Tensor):
        if input_ids.dim() == 2:
            if input_ids.shape[0] != 1:
                raise CourseError(f"this loop generates for one sequence at a time; got a batch of {input_ids.shape[0]}")
            input_ids = input_ids[0]
        if input_ids.dim() != 1:
            raise CourseError(f"input_ids must be 1-D or (1, n), got shape {tuple(input_ids.shape)}")
        ids = [int(t) for t in input_ids.tolist()]
    elif isinstance(input_ids, Sequence) and not isinstance(input_ids, str):
        ids = list(input_ids)
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
            raise CourseError("input_ids must be whole numbers (token ids)")
    else:
        raise CourseError(f"input_ids must be a tensor or a list of token ids, got {type(input_ids).__name__} "
                          f"(to start from text, use generate_text)")
    if not ids:
        raise CourseError("the prompt is empty: give at least one token")
    return ids


def _stop_set(stop_tokens) -> set[int]:
    if stop_tokens is None:
        return set()
    if isinstance(stop_tokens, int) and not isinstance(stop_tokens, bool):
        return {stop_tokens}
    try:
        stops = set(stop_tokens)
    except TypeError:
        raise CourseError(f"stop_tokens must be a token id or a list of token ids, got {stop_tokens!r}") from None
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in stops):
        raise CourseError(f"stop_tokens must be token ids (whole numbers >= 0), got {stop_tokens!r}")
    return stops


def _device_of(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _output_vocab(model) -> int | None:
    """Rows of the output layer (None when the model has none). A dynamically quantized Linear's `weight` is a
    method, not a tensor; the config's vocabulary size is the fallback."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if callable(weight):
        weight = weight()
    if weight is not None and hasattr(weight, "shape"):
        return int(weight.shape[0])
    return getattr(getattr(model, "config", None), "vocab_size", None)


@torch.no_grad()
def generate(model: torch.nn.Module, input_ids, max_new_tokens: int = 20, *, strategy: str = "greedy",
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0,
             stop_tokens: int | Iterable[int] | None = None, use_cache: bool = True, seed: int | None = None,
             on_token: Callable[[int, int], None] | None = None) -> GenerationResult:
    """Generate up to `max_new_tokens` tokens after `input_ids`, one forward pass per token.

    strategy      'greedy' (the most likely token every time) or 'sample' (draw after the filters)
    temperature, top_k, top_p, repetition_penalty   see the filter functions above (sampling only,
                  except the repetition penalty, which also applies to greedy)
    stop_tokens   token id(s) that end generation (the stop token is kept in the output, like
                  `model.generate` does with `eos_token_id`)
    use_cache     True: feed only the newest token and reuse the KV cache; False: re-read everything
    seed          seeds the sampler's own random generator (None: torch's global generator, so
                  `torch.manual_seed(s)` before this call reproduces `model.generate` after the same seed)
    on_token      called as on_token(step, token_id) after each new token (progress bars, streaming)
    """
    if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "forward", None)):
        raise CourseError("model must be a transformers causal language model (e.g. from slmcourse.load)")
    if getattr(model.config, "is_encoder_decoder", False):
        raise CourseError("this loop is for decoder-only (causal) models; an encoder-decoder such as T5 "
                          "needs its encoder output too: use model.generate for it")
    check_settings(strategy, temperature, top_k, top_p, repetition_penalty, max_new_tokens)
    prompt = _prompt_ids(input_ids)
    stops = _stop_set(stop_tokens)
    vocab = _output_vocab(model)
    if vocab is not None and (max(prompt) >= vocab or min(prompt) < 0):
        raise CourseError(f"prompt token ids must lie in [0, {vocab}), this model's vocabulary")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    device = _device_of(model)

    ids = list(prompt)
    new: list[int] = []
    past = None
    passes = fed = 0
    reason = "max_new_tokens"
    start = time.perf_counter()
    for step in range(max_new_tokens):
        if use_cache and past is not None:
            feed = ids[-1:]                       # only the newest token: the cache holds the rest
        else:
            feed = ids                            # the whole sequence
        batch = torch.tensor([feed], dtype=torch.long, device=device)
        out = model(input_ids=batch, past_key_values=past, use_cache=use_cache)
        past = out.past_key_values if use_cache else None
        passes += 1
        fed += len(feed)
        logits = out.logits[0, -1].float().cpu()
        scores = process_logits(logits, ids, strategy=strategy, temperature=temperature, top_k=top_k,
                                top_p=top_p, repetition_penalty=repetition_penalty)
        token = choose_token(scores, strategy, generator)
        ids.append(token)
        new.append(token)
        if on_token is not None:
            on_token(step, token)
        if token in stops:
            reason = "stop token"
            break
    seconds = time.perf_counter() - start
    settings = dict(strategy=strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                    repetition_penalty=repetition_penalty, use_cache=use_cache, seed=seed)
    return GenerationResult(prompt, new, reason, seconds, passes, fed, settings)


def generate_text(model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int = 20, *,
                  chat: bool = False, stop_at_eos: bool = True, **settings) -> tuple[str, GenerationResult]:
    """Text in, text out: tokenize `prompt` (through the chat template if `chat`), generate, decode.

    Returns (the new text, the GenerationResult). Stops at the tokenizer's end-of-sequence token
    unless `stop_at_eos=False`; extra keyword arguments go to `generate`.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise CourseError("the prompt must be some text")
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise CourseError("this tokenizer has no chat template (a base model was not trained for chat); "
                              "use chat=False")
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            tokenize=True, return_dict=True)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    stops = set(_stop_set(settings.pop("stop_tokens", None)))
    if stop_at_eos and tokenizer.eos_token_id is not None:
        stops.add(tokenizer.eos_token_id)
    result = generate(model, list(ids), max_new_tokens, stop_tokens=stops or None, **settings)
    return tokenizer.decode(result.new_ids, skip_special_tokens=True), result


@torch.no_grad()
def next_token_logits(model: torch.nn.Module, input_ids) -> torch.Tensor:
    """The model's logits for the token after `input_ids` (1-D, float32, on the CPU)."""
    ids = _prompt_ids(input_ids)
    batch = torch.tensor([ids], dtype=torch.long, device=_device_of(model))
    return model(input_ids=batch, use_cache=False).logits[0, -1].float().cpu()


def top_tokens(probs: torch.Tensor, tokenizer=None, n: int = 10) -> list[tuple[int, str, float]]:
    """The n most likely tokens as (id, text, probability), most likely first."""
    _check_logits(probs)
    if not isinstance(n, int) or n < 1:
        raise CourseError(f"n must be a whole number >= 1, got {n!r}")
    values, indices = torch.topk(probs, min(n, probs.numel()))
    rows = []
    for value, index in zip(values.tolist(), indices.tolist()):
        text = tokenizer.decode([index]) if tokenizer is not None else str(index)
        rows.append((index, text, value))
    return rows


def survivors(probs: torch.Tensor) -> int:
    """How many tokens keep a probability above zero."""
    return int((probs > 0).sum())

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
