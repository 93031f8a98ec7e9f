"""The course's one perplexity protocol: one function, one stated recipe.

Perplexity is exp(mean negative log-likelihood per predicted token). The number depends on how the
text is cut into windows: a token scored with 10 tokens of context is harder to predict than the same
token scored with 200. So every lesson and assignment measures it the same way:

    PROTOCOL: the text `heldout_general.txt` (bundled), tokenized by the model's own tokenizer,
    scored with a sliding window of CONTEXT = 256 tokens moved by STRIDE = 128 tokens. Every token
    is scored exactly once; after the first window each scored token sees at least
    CONTEXT - STRIDE = 128 tokens of context. (The strided recipe of the transformers
    documentation, "Perplexity of fixed-length models".)

Models with a short context (lesson 8's students: 64 positions) use the same function with a smaller,
stated `context` and `stride`; a figure is only comparable to another measured with the same recipe.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .errors import CourseError

CONTEXT = 256
STRIDE = 128
HELDOUT_TEXT = "heldout_general.txt"
PROTOCOL = (f"{HELDOUT_TEXT}, sliding window of {CONTEXT} tokens moved by {STRIDE} "
            f"(each token scored once, with at least {CONTEXT - STRIDE} tokens of context after the first window)")


def heldout_text(name: str = HELDOUT_TEXT) -> str:
    """The text of one of the course's bundled data files (default: the protocol's held-out text)."""
    path = Path(__file__).resolve().parent / "data" / name
    if not path.is_file():
        raise CourseError(f"no bundled text named {name!r}")
    return path.read_text(encoding="utf-8")


def _token_ids(tokenizer, texts: str | Sequence[str]) -> list[torch.Tensor]:
    if isinstance(texts, str):
        texts = [texts]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise CourseError("perplexity needs one or more non-empty texts")
    return [tokenizer(t, return_tensors="pt").input_ids[0] for t in texts]


def window_spans(n_tokens: int, context: int = CONTEXT, stride: int = STRIDE) -> list[tuple[int, int, int]]:
    """The protocol's windows over a sequence of n tokens: (begin, end, first scored position).

    Window [begin, end) is fed to the model; tokens at positions first..end-1 are scored (each
    predicted from the tokens before it inside the window). Every position from 1 to n-1 is scored once,
    except with stride == context (non-overlapping blocks): the first token of each later block has no
    context inside its window and is not scored, as in the transformers recipe.
    """
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
        raise CourseError(f"perplexity needs at least 2 tokens, got {n_tokens!r}")
    for name, value in (("context", context), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseError(f"{name} must be a positive whole number of tokens, got {value!r}")
    if context < 2:
        raise CourseError(f"context must be at least 2 tokens, got {context}")
    if stride > context:
        raise CourseError(f"stride ({stride}) cannot be larger than context ({context}): tokens would go unscored")
    spans, scored_to = [], 1
    begin = 0
    while True:
        end = min(begin + context, n_tokens)
        spans.append((begin, end, max(scored_to, begin + 1)))
        scored_to = end
        if end == n_tokens:
            return spans
        begin += stride


@torch.no_grad()
def perplexity(model: nn.Module, tokenizer=None, texts: str | Sequence[str] | None = None, *,
               ids: torch.Tensor | None = None, context: int = CONTEXT, stride: int = STRIDE) -> float:
    """exp(mean next-token negative log-likelihood) under the course's protocol.

    Give either `tokenizer` and `texts` (a string or a list of documents, each scored on its own), or
    `ids`: a 1-D tensor of token ids (one sequence) or a 2-D (n, L) tensor (n sequences). Lower is
    better; a model that guessed uniformly among V tokens would score V.
    """
    if not isinstance(model, nn.Module):
        raise CourseError(f"perplexity needs a model (torch.nn.Module), got {type(model).__name__}")
    if ids is None:
        if tokenizer is None or texts is None:
            raise CourseError("give perplexity either tokenizer and texts, or ids=")
        sequences = _token_ids(tokenizer, texts)
    else:
        if isinstance(ids, (list, tuple)):
            ids = torch.tensor(ids)
        if not torch.is_tensor(ids) or ids.ndim not in (1, 2) or ids.dtype.is_floating_point:
            raise CourseError("ids must be a 1-D or 2-D tensor of integer token ids")
        sequences = [ids] if ids.ndim == 1 else list(ids)
        if not sequences:
            raise CourseError("ids holds no sequence")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    try:
        for seq in sequences:
            for begin, end, first in window_spans(int(seq.shape[0]), context, stride):
                window = seq[begin:end].unsqueeze(0).to(device)
                logits = model(input_ids=window).logits[0].float()
                # logits at window position j predict the token at begin + j + 1
                predict = logits[first - begin - 1:end - begin - 1]
                targets = window[0, first - begin:]
                total_nll += nn.functional.cross_entropy(predict, targets, reduction="sum").item()
                total_tokens += targets.numel()
    finally:
        model.train(was_training)
    return math.exp(total_nll / total_tokens)


def heldout_perplexity(model: nn.Module, tokenizer) -> float:
    """The protocol's figure: perplexity on the bundled held-out English text (see PROTOCOL)."""
    return perplexity(model, tokenizer, heldout_text())

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
