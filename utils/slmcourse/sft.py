"""Chat-format supervised fine-tuning (lesson 11): instruction/answer pairs in the model's own chat template,
with the loss on the assistant's tokens only.

An instruct model was trained on conversations written in its chat template (lesson 3). Fine-tuning it
on raw text, or prompting it without the template, feeds it a format it never saw. So:

1. each (question, answer) pair is written with `tokenizer.apply_chat_template` - the same text the
   model sees at inference - as the system/user turns followed by the assistant's answer;
2. the labels are -100 (ignored by the cross-entropy) everywhere except on the answer's tokens and the
   end-of-turn token that closes it: the model learns to *answer* (and to stop), not to predict the
   question or the system prompt;
3. it is prompted with the same template (`add_generation_prompt=True`) before and after training.

`answer_perplexity` is the domain score: exp(mean negative log-likelihood of the answer tokens given the
templated prompt), every answer token counted once.
"""
from __future__ import annotations

import copy
import inspect
import math
from typing import Sequence

import torch
from torch import nn

from .errors import CourseError

IGNORE_INDEX = -100  # the label value torch's cross_entropy (and transformers' loss) skips


def read_qa(name: str = "domain_qa_train.txt") -> list[tuple[str, str]]:
    """(question, answer) pairs from a bundled file of blocks "Q: ...\\nA: ..." separated by blank lines."""
    from .training import read_data

    pairs = []
    for block in read_data(name).split("\n\n"):
        block = block.strip()
        if not block:
            continue
        lines = block.split("\n")
        if len(lines) != 2 or not lines[0].startswith("Q: ") or not lines[1].startswith("A: "):
            raise CourseError(f"{name}: every block must be two lines, 'Q: ...' then 'A: ...'; got {block[:60]!r}")
        pairs.append((lines[0][3:].strip(), lines[1][3:].strip()))
    if not pairs:
        raise CourseError(f"{name} holds no question/answer pairs")
    return pairs


def _check_text(name: str, value) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CourseError(f"the {name} must be a non-empty string, got {value!r}")


def _check_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise CourseError("this tokenizer has no chat template: chat-format fine-tuning needs an instruct "
                          "model's tokenizer (e.g. SmolLM2-135M-Instruct's)")


def chat_prompt_ids(tokenizer, question: str) -> torch.Tensor:
    """The templated prompt for one question, ending where the assistant's answer starts (1-D token ids)."""
    _check_template(tokenizer)
    _check_text("question", question)
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
    return torch.tensor(tokenizer(text, add_special_tokens=False).input_ids, dtype=torch.long)


def chat_example(tokenizer, question: str, answer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One training example in the model's chat template: (input_ids, labels), both 1-D.

    labels are IGNORE_INDEX (-100) on the system prompt, the question and the template's markup, and equal
    to input_ids on the answer and the end-of-turn token after it (so the model learns to stop).
    """
    _check_text("answer", answer)
    prompt = chat_prompt_ids(tokenizer, question).tolist()
    full_text = tokenizer.apply_chat_template([{"role": "user", "content": question},
                                               {"role": "assistant", "content": answer}], tokenize=False)
    ids = tokenizer(full_text, add_special_tokens=False).input_ids
    if ids[:len(prompt)] != prompt:
        raise CourseError("the templated conversation does not start with the templated prompt: this "
                          "template cannot be split into prompt and answer by token position")
    end_of_turn = _end_of_turn_id(tokenizer)
    try:
        stop = ids.index(end_of_turn, len(prompt)) + 1      # keep the answer and its end-of-turn token
    except ValueError:
        stop = len(ids)
    labels = [IGNORE_INDEX] * len(prompt) + ids[len(prompt):stop] + [IGNORE_INDEX] * (len(ids) - stop)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def _end_of_turn_id(tokenizer) -> int | None:
    for token in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
            return tid
    return tokenizer.eos_token_id


def chat_examples(tokenizer, pairs: Sequence[tuple[str, str]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`chat_example` for every (question, answer) pair."""
    if not pairs:
        raise CourseError("chat_examples needs at least one (question, answer) pair")
    return [chat_example(tokenizer, q, a) for q, a in pairs]


def trained_text(tokenizer, labels: torch.Tensor, skip_special_tokens: bool = True) -> str:
    """Decode only the tokens that carry a loss (labels != -100): what the model is trained to write."""
    kept = labels[labels != IGNORE_INDEX]
    return tokenizer.decode(kept, skip_special_tokens=skip_special_tokens)


@torch.no_grad()
def answer_perplexity(model: nn.Module, examples: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """exp(mean NLL of the answer tokens given the templated prompt), over all examples' answer tokens."""
    if not examples:
        raise CourseError("answer_perplexity needs at least one example")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for ids, labels in examples:
            logits = model(input_ids=ids.unsqueeze(0).to(device)).logits[0, :-1].float()
            targets = labels[1:].to(device)
            total += nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX,
                                                 reduction="sum").item()
            count += int((targets != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise CourseError("these examples have no answer tokens (every label is -100)")
    return math.exp(total / count)


@torch.no_grad()
def chat_reply(model: nn.Module, tokenizer, question: str, max_new_tokens: int = 40) -> str:
    """Greedy reply to one question, prompted with the chat template (deterministic)."""
    ids = chat_prompt_ids(tokenizer, question).unsqueeze(0).to(next(model.parameters()).device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


# ---------------------------------------------------------------------------------------------
# Held-out questions scored as lesson 10 does: log-likelihood multiple choice, with intervals
# ---------------------------------------------------------------------------------------------
def read_mc(name: str = "domain_mc_heldout.json") -> list[dict]:
    """Held-out multiple-choice items [{"id", "question", "choices", "answer"}] (answer = index of the gold)."""
    import json

    from .training import read_data

    items = json.loads(read_data(name))
    for item in items:
        if not {"id", "question", "choices", "answer"} <= set(item) or not 0 <= item["answer"] < len(item["choices"]):
            raise CourseError(f"{name}: every item needs id, question, choices and a valid answer index")
    return items


def mc_context(tokenizer, question: str, passages: Sequence[str] | None = None,
               shots: Sequence[tuple[str, str]] = ()) -> str:
    """The chat-template prompt an answer is scored after: optional few-shot turns, then the question
    (with the retrieved passages in front of it, if any), then the opened assistant turn."""
    _check_template(tokenizer)
    from .rag import rag_message

    messages = []
    for q, a in shots:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    content = rag_message(question, passages) if passages else question
    messages.append({"role": "user", "content": content})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.no_grad()
def _run(model: nn.Module, ids: Sequence[int], cache=None):
    """(log-probs of the next token after `ids`, KV cache) - `ids` run on top of `cache` (or from scratch).
    Only the last position goes through the output layer (`logits_to_keep=1`): over SmolLM2's 49,152-token
    vocabulary the output layer is a fifth of the model's work per position, and no other position is needed."""
    device = next(model.parameters()).device
    kwargs = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out = model(input_ids=torch.tensor([list(ids)], device=device), past_key_values=cache, use_cache=True, **kwargs)
    return torch.log_softmax(out.logits[0, -1].float(), -1), out.past_key_values


def _shared_prefix(model: nn.Module, contexts: Sequence[Sequence[int]]):
    """(ids, KV cache) of the longest token prefix all contexts share (each keeps at least one token of its
    own), or None when they share fewer than two tokens: the prefix is run through the model once."""
    if len(contexts) < 2:
        return None
    first, n = contexts[0], min(len(c) for c in contexts) - 1
    i = 0
    while i < n and all(c[i] == first[i] for c in contexts):
        i += 1
    return (list(first[:i]), _run(model, first[:i])[1]) if i >= 2 else None


@torch.no_grad()
def _choice_logprobs(model: nn.Module, tokenizer, context: str, choices: Sequence[str], prefix=None) -> list[float]:
    from .evaluate import continuation_logprobs, encode_pair

    pairs = [encode_pair(tokenizer, context, c) for c in choices]
    ctx = pairs[0][0]
    if any(p[0] != ctx for p in pairs) or any(not c for _, c in pairs):
        return continuation_logprobs(model, tokenizer, context, choices)
    if prefix is not None and len(prefix[0]) < len(ctx) and ctx[:len(prefix[0])] == prefix[0]:
        first, cache = _run(model, ctx[len(prefix[0]):], copy.deepcopy(prefix[1]))   # a copy: the prefix is reused
    else:
        first, cache = _run(model, ctx)
    cache.batch_repeat_interleave(len(pairs))
    width = max(len(c) for _, c in pairs)
    device = next(model.parameters()).device
    ids = torch.zeros(len(pairs), width, dtype=torch.long)
    mask = torch.zeros(len(pairs), len(ctx) + width, dtype=torch.long)
    mask[:, :len(ctx)] = 1
    for row, (_, cont) in enumerate(pairs):
        ids[row, :len(cont)] = torch.tensor(cont)
        mask[row, len(ctx):len(ctx) + len(cont)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), past_key_values=cache).logits
    logp = torch.log_softmax(logits.float(), -1).cpu()
    first = first.cpu()
    return [float(first[cont[0]] + sum(logp[row, j - 1, cont[j]] for j in range(1, len(cont))))
            for row, (_, cont) in enumerate(pairs)]


@torch.no_grad()
def choice_logprobs(model: nn.Module, tokenizer, context: str, choices: Sequence[str]) -> list[float]:
    """The same numbers as `evaluate.continuation_logprobs` (sum of log P(choice | context)), but the shared
    context runs through the model once, only its last position through the output layer, and its KV cache
    serves every choice (cheaper for long prompts)."""
    return _choice_logprobs(model, tokenizer, context, choices)


def mc_correct(model: nn.Module, tokenizer, items: Sequence[dict], retrieve=None,
               shots: Sequence[tuple[str, str]] = ()) -> list[bool]:
    """Per item: does the choice with the highest length-normalised log-likelihood (lm-eval's acc_norm,
    `evaluate.pick(normalise=True)`) equal the gold? `retrieve(question) -> passages` adds RAG.

    Prefix caching: the prompt every item shares (the system turn, the few-shot turns) runs through the model
    once, and each item continues from a copy of its KV cache - the same numbers, without recomputing it."""
    from .evaluate import encode_pair, pick

    if not items:
        raise CourseError("mc_correct needs at least one item")
    contexts = [mc_context(tokenizer, item["question"], retrieve(item["question"]) if retrieve is not None else None,
                           shots) for item in items]
    prefix = _shared_prefix(model, [encode_pair(tokenizer, c, item["choices"][0])[0] for c, item in zip(contexts, items)])
    out = []
    for item, context in zip(items, contexts):
        logprobs = _choice_logprobs(model, tokenizer, context, item["choices"], prefix)
        out.append(pick(logprobs, item["choices"], normalise=True) == item["answer"])
    return out

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
