"""Direct Preference Optimization (lesson 11): Rafailov et al. 2023, arXiv:2305.18290.

For a prompt x with a preferred answer y_w and a rejected one y_l, a policy pi and a frozen reference pi_ref,

    loss = -log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )

The bracketed terms times beta are the implicit rewards of the chosen and rejected answers; their difference
is the reward margin, which training pushes up. (trl's DPOTrainer with loss_type="sigmoid" computes the same.)
"""
from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F

from .errors import CourseError
from .sft import IGNORE_INDEX


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token) over the answer tokens (labels != -100), one value per row.

    logits: (batch, seq, vocab) from the model on input_ids; labels: (batch, seq), -100 where no answer."""
    if logits.ndim != 3 or labels.ndim != 2 or logits.shape[:2] != labels.shape:
        raise CourseError(f"logits must be (batch, seq, vocab) and labels (batch, seq); got "
                          f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    logits, targets = logits[:, :-1].float(), labels[:, 1:]          # position t predicts token t + 1
    keep = targets != IGNORE_INDEX
    logp = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * keep).sum(-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, chosen rewards, rejected rewards) from sequence log-probabilities (one value per pair)."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise CourseError(f"beta must be a number > 0, got {beta!r}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise CourseError(f"the four log-probability tensors must have one shape, got {sorted(shapes)}")
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


def concise_preferences(pairs: Sequence[tuple[str, str]]) -> list[dict]:
    """Preference pairs that prefer brevity: for each (question, house-style answer), `chosen` is the answer's
    first sentence plus its closing "Next:" step, `rejected` the full answer (same facts, more words)."""
    out = []
    for question, answer in pairs:
        body, sep, nxt = answer.partition(" Next: ")
        first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
        chosen = f"{first}{sep}{nxt}" if sep else first
        if chosen != answer:
            out.append({"prompt": question, "chosen": chosen, "rejected": answer})
    if not out:
        raise CourseError("no pair has more than one sentence before its 'Next:' step")
    return out


def read_preferences(name: str) -> list[dict]:
    """Preference pairs from a bundled JSON file: [{"prompt", "chosen", "rejected"}, ...]."""
    import json

    from .training import read_data

    pairs = json.loads(read_data(name))
    for p in pairs:
        if set(p) < {"prompt", "chosen", "rejected"}:
            raise CourseError(f"{name}: every pair needs 'prompt', 'chosen' and 'rejected'")
    return pairs


def pair_batch(tokenizer, pair: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels) for the chosen and the rejected answer, padded to one (2, seq) batch."""
    from .checks import record
    from .sft import chat_example

    record("pair", pair, ("prompt", "chosen", "rejected"), what="a preference pair")
    (ci, cl), (ri, rl) = chat_example(tokenizer, pair["prompt"], pair["chosen"]), \
        chat_example(tokenizer, pair["prompt"], pair["rejected"])
    width = max(len(ci), len(ri))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((2, width), pad, dtype=torch.long)
    labels = torch.full((2, width), IGNORE_INDEX, dtype=torch.long)
    for row, (i, l) in enumerate([(ci, cl), (ri, rl)]):
        ids[row, :len(i)], labels[row, :len(l)] = i, l
    return ids, labels

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
