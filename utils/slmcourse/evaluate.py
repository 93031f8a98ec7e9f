"""Evaluating language models on tasks (lesson 10): scoring, prompts, intervals, paired comparisons.

The two ways practitioners score a causal LM, as EleutherAI's lm-evaluation-harness does:

- **log-likelihood multiple choice** (ARC, HellaSwag, MMLU style): the model reads the question and
  each answer option is scored by the sum of its tokens' log-probabilities given the question. The
  option with the highest sum is the prediction ("acc"); dividing each sum by the option's length in
  characters first gives "acc_norm" (lm-eval's task.py: `lls / completion_len`, len of the choice
  string). The context and continuation are tokenized as lm-eval does: encode context + continuation
  whole, and the continuation is what follows the context's own tokens.
- **generative exact match** (GSM8K style): the model writes an answer greedily, a robust extraction
  pulls the number out of it, and it is compared with the gold answer.

Then the statistics every comparison needs: a percentile bootstrap 95 % interval for an accuracy, a
paired bootstrap and McNemar's exact test for two models on the same items, and the chance level.
Also the bundled item sets (`load_items`), few-shot and chat-template prompts, an n-gram contamination
check, a pairwise LLM-as-judge, and the precomputed scores (`load_scores`, `measured_accuracy`) that
other lessons and the chooser can read.
"""
from __future__ import annotations

import inspect
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .errors import CourseError

DATA = Path(__file__).resolve().parent / "data" / "eval"
SCORES_FILE = DATA / "scores.json"
SPLITS = ("dev", "test", "train")


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "mc" (log-likelihood multiple choice) or "gen" (generative exact match)
    description: str
    n_choices: int  # 0 for generative tasks

    @property
    def chance(self) -> float:
        """Accuracy of guessing uniformly: 1 / options (0 for a free-form number)."""
        return 1.0 / self.n_choices if self.n_choices else 0.0


TASKS = {
    "facts": Task("facts", "mc", "closed-book commonsense: which of 4 things is in a category", 4),
    "sentiment": Task("sentiment", "mc", "sentiment of a one-sentence review: negative or positive", 2),
    "arithmetic": Task("arithmetic", "gen", "add or subtract two numbers from 1 to 50, answered by generation", 0),
}


def task(name: str) -> Task:
    if name not in TASKS:
        raise CourseError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def load_items(name: str, split: str = "test", limit: int | None = None) -> list[dict]:
    """The bundled items of one task and split (dev 50, test 200, train 2,000), as dicts."""
    task(name)
    if split not in SPLITS:
        raise CourseError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    lines = (DATA / f"{name}_{split}.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    return items[:limit] if limit is not None else items


# ---------------------------------------------------------------- prompts

def _item(item) -> dict:
    """Issue 20: an item is a dict with a question and an answer (as load_items returns), not a KeyError."""
    from .checks import record

    return record("item", item, ("question", "answer"), what="an item (a dict as load_items returns)")


def format_question(name: str, item: dict) -> str:
    """The prompt for one item, without its answer: 'Question: ...\\nAnswer:' (or 'Review: ...\\nSentiment:')."""
    _item(item)
    if name == "sentiment":
        return f"Review: {item['question']}\nSentiment:"
    return f"Question: {item['question']}\nAnswer:"


def gold_text(item: dict) -> str:
    """The gold answer as text (the right option, or the number)."""
    _item(item)
    return item["choices"][item["answer"]] if "choices" in item else str(item["answer"])


def few_shot_prompt(name: str, item: dict, shots: int = 0, seed: int = 0, delimiter: str = " ") -> str:
    """`shots` solved dev items (drawn with `seed`), a blank line between, then the question."""
    if not isinstance(shots, int) or shots < 0:
        raise CourseError(f"shots must be a whole number >= 0, got {shots!r}")
    examples = fewshot_examples(name, shots, seed, exclude=_item(item).get("id"))
    parts = [format_question(name, ex) + delimiter + gold_text(ex) for ex in examples]
    return "\n\n".join(parts + [format_question(name, item)])


def fewshot_examples(name: str, shots: int, seed: int = 0, exclude: str | None = None) -> list[dict]:
    pool = [ex for ex in load_items(name, "dev") if ex["id"] != exclude]
    if shots > len(pool):
        raise CourseError(f"at most {len(pool)} shots: the dev split is the few-shot pool")
    return random.Random(seed).sample(pool, shots)


def chat_prompt(tokenizer, name: str, item: dict, shots: int = 0, seed: int = 0) -> str:
    """The same item through the tokenizer's chat template: each shot a user/assistant turn, then the question
    as the last user turn and the assistant's turn opened (the answer is scored or generated after it)."""
    messages = []
    for ex in fewshot_examples(name, shots, seed, exclude=_item(item).get("id")):
        messages += [{"role": "user", "content": format_question(name, ex)},
                     {"role": "assistant", "content": gold_text(ex)}]
    messages.append({"role": "user", "content": format_question(name, item)})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_prompt(tokenizer, name: str, item: dict, shots: int = 0, chat: bool = False, seed: int = 0) -> tuple[str, str]:
    """(prompt, delimiter): the text before the answer, and what goes between it and the answer."""
    if chat:
        if getattr(tokenizer, "chat_template", None) is None:
            raise CourseError("this tokenizer has no chat template: use chat=False for a base model")
        return chat_prompt(tokenizer, name, item, shots, seed), ""
    return few_shot_prompt(name, item, shots, seed), " "


# ---------------------------------------------------------------- log-likelihood multiple choice

def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split: trailing spaces move to the continuation; encode the whole and the context, and the
    continuation's tokens are those after the context's."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation)["input_ids"]
    ctx = tokenizer(context)["input_ids"]
    return ctx, whole[len(ctx):]


@torch.no_grad()
def continuation_logprobs(model, tokenizer, context: str, continuations: Sequence[str]) -> list[float]:
    """Sum of log P(continuation tokens | context) for each continuation (one padded batch)."""
    if isinstance(continuations, str) or not continuations:
        raise CourseError(f"give a list of one or more continuations to score, got {continuations!r}")
    pairs = [encode_pair(tokenizer, context, c) for c in continuations]
    if any(len(cont) == 0 for _, cont in pairs):
        raise CourseError("a continuation encoded to no tokens: check the options are not empty")
    seqs = [ctx + cont for ctx, cont in pairs]
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s)
        mask[row, :len(s)] = 1
    # only the positions that predict continuation tokens need the output layer (a 262k-token vocabulary
    # makes it most of the work): keep the last `keep` positions' logits where the model supports it
    keep = width - min(len(ctx) for ctx, _ in pairs) + 1
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        first = width - logits.shape[1]
    else:
        logits, first = model(input_ids=ids, attention_mask=mask).logits, 0
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for row, (ctx, cont) in enumerate(pairs):
        positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1) - first  # logits at t predict token t + 1
        out.append(float(logp[row, positions, torch.tensor(cont)].sum()))
    return out


def pick(logprobs: Sequence[float], choices: Sequence[str], normalise: bool = False) -> int:
    """argmax of the sums ('acc'), or of sum / len(choice) in characters ('acc_norm', lm-eval's choice)."""
    if isinstance(choices, str) or not len(logprobs) or len(logprobs) != len(choices):
        raise CourseError(f"pick needs one log-probability per choice (a list of one or more choices), got "
                          f"{len(logprobs)} log-probabilities for choices {choices!r}"[:300])
    scores = [lp / len(c) if normalise else lp for lp, c in zip(logprobs, choices)]
    return max(range(len(scores)), key=scores.__getitem__)


# ---------------------------------------------------------------- generative exact match

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str) -> str | None:
    """The first number in the model's answer ('The answer is 1,234.' -> '1234'), or None.

    Only the text up to the first blank line counts (a model often goes on to invent the next question)."""
    first = text.strip().split("\n\n")[0]
    match = NUMBER.search(first)
    if match is None:
        return None
    value = match.group().replace(",", "").rstrip(".")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value


def exact_match(prediction: str | None, gold: str) -> bool:
    return prediction is not None and prediction.strip() == gold.strip()


@torch.no_grad()
def generate_answer(model, tokenizer, prompt: str, max_new_tokens: int = 8) -> str:
    """Greedy continuation of `prompt` (the model's own words, before extraction)."""
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=pad)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


# ---------------------------------------------------------------- running a task

@dataclass
class EvalResult:
    task: str
    model: str
    shots: int
    chat: bool
    correct: list[bool]  # per item: acc (sum) for mc, exact match for gen
    correct_norm: list[bool] = field(default_factory=list)  # per item: acc_norm (mc only)
    outputs: list[str] = field(default_factory=list)  # the predicted option or the generated text
    ids: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    def interval(self, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
        return bootstrap_ci(self.correct, level, n_boot, seed)

    def text(self) -> str:
        lo, hi = self.interval()
        return (f"{self.model} on {self.task} ({len(self.correct)} items, {self.shots}-shot"
                f"{', chat template' if self.chat else ''}): {self.accuracy:.1%} [95% CI {lo:.1%}, {hi:.1%}], "
                f"chance {TASKS[self.task].chance:.0%}")


def evaluate(model, tokenizer, name: str, items: Sequence[dict] | None = None, shots: int = 0, chat: bool = False,
             model_name: str = "model", max_new_tokens: int = 8, progress: bool = False) -> EvalResult:
    """Score `model` on a task's items (default: the test split) and keep every item's verdict."""
    t = task(name)
    items = load_items(name, "test") if items is None else list(items)
    if not items:
        raise CourseError(f"items is empty: pass one or more items of the {name!r} task "
                          f"(e.g. evaluate.load_items({name!r}, 'dev')[:10]), or None for its test split")
    result = EvalResult(name, model_name, shots, chat, [])
    loop = items
    if progress:
        from tqdm.auto import tqdm
        loop = tqdm(items, desc=f"{model_name} {name}", leave=False)
    for item in loop:
        prompt, delim = build_prompt(tokenizer, name, item, shots, chat)
        result.ids.append(item["id"])
        if t.kind == "mc":
            lps = continuation_logprobs(model, tokenizer, prompt, [delim + c for c in item["choices"]])
            p, pn = pick(lps, item["choices"]), pick(lps, item["choices"], normalise=True)
            result.correct.append(p == item["answer"])
            result.correct_norm.append(pn == item["answer"])
            result.outputs.append(item["choices"][p])
        else:
            text = generate_answer(model, tokenizer, prompt, max_new_tokens)
            result.correct.append(exact_match(extract_number(text), item["answer"]))
            result.outputs.append(text)
    return result


# ---------------------------------------------------------------- statistics

def _bits(correct: Sequence) -> torch.Tensor:
    x = torch.as_tensor([float(c) for c in correct], dtype=torch.float64)
    if x.numel() == 0:
        raise CourseError("no items: an accuracy needs at least one scored item")
    if not torch.all((x == 0) | (x == 1)):
        raise CourseError("per-item results must be 0/1 (or True/False)")
    return x


def bootstrap_ci(correct: Sequence, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of 0/1 results: resample the items with replacement
    `n_boot` times, take the (1-level)/2 and (1+level)/2 quantiles of the resampled accuracies."""
    x = _bits(correct)
    if not 0 < level < 1:
        raise CourseError(f"level must be between 0 and 1, got {level!r}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(x), (n_boot, len(x)), generator=g)
    means = x[idx].mean(dim=1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(lo), float(hi)


def paired_bootstrap(a: Sequence, b: Sequence, level: float = 0.95, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """(accuracy of a - accuracy of b, interval low, high), resampling the SAME items for both models."""
    if not 0 < level < 1:
        raise CourseError(f"level must be between 0 and 1, got {level!r}")
    x, y = _bits(a), _bits(b)
    if len(x) != len(y):
        raise CourseError(f"a paired comparison needs the same items: {len(x)} vs {len(y)} results")
    d = x - y
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(d), (n_boot, len(d)), generator=g)
    means = d[idx].mean(dim=1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(d.mean()), float(lo), float(hi)


def mcnemar(a: Sequence, b: Sequence) -> tuple[int, int, float]:
    """McNemar's exact test: (items only a got right, items only b got right, two-sided p-value).

    Items both models got right or wrong say nothing about which is better; under 'no difference' each
    discordant item is a fair coin, so p = P(Binomial(n01 + n10, 1/2) at least as far from the middle)."""
    x, y = _bits(a), _bits(b)
    if len(x) != len(y):
        raise CourseError(f"a paired comparison needs the same items: {len(x)} vs {len(y)} results")
    only_a = int(((x == 1) & (y == 0)).sum())
    only_b = int(((x == 0) & (y == 1)).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return only_a, only_b, 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return only_a, only_b, min(1.0, 2 * tail)


# ---------------------------------------------------------------- contamination

def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def contamination(items: Sequence[dict], corpus: str, n: int = 8) -> tuple[float, list[str]]:
    """Share of items whose question + answer shares at least one word n-gram with `corpus`
    (GPT-3's report used 13-grams; Llama 2's, matching token spans of more than 10), and their ids."""
    if n < 1:
        raise CourseError(f"n must be at least 1, got {n!r}")
    seen = ngrams(corpus, n)
    hits = [it["id"] for it in items if ngrams(it["question"] + " " + gold_text(it), n) & seen]
    return len(hits) / max(len(items), 1), hits


# ---------------------------------------------------------------- LLM as judge

def judge_prompt(question: str, first: str, second: str) -> str:
    return (f"Which answer to the question is better?\nQuestion: {question}\nAnswer A: {first}\n"
            f"Answer B: {second}\nReply with A or B.")


@torch.no_grad()
def judge(model, tokenizer, question: str, first: str, second: str) -> str:
    """'A' or 'B': the letter the judge model finds more likely after the chat-templated judge prompt."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": judge_prompt(question, first, second)}],
                                           tokenize=False, add_generation_prompt=True)
    lps = continuation_logprobs(model, tokenizer, prompt, ["A", "B"])
    return "A" if lps[0] >= lps[1] else "B"


def position_bias(model, tokenizer, pairs: Sequence[tuple[str, str, str]]) -> list[dict]:
    """Ask the judge about each (question, good, bad) pair twice, good answer first then second.
    A consistent judge picks the same answer both times; a position-biased one picks the same letter."""
    rows = []
    for q, good, bad in pairs:
        first, second = judge(model, tokenizer, q, good, bad), judge(model, tokenizer, q, bad, good)
        rows.append({"question": q, "good first": first, "good second": second,
                     "consistent": (first == "A") == (second == "B"), "picks good both times": first == "A" and second == "B"})
    return rows


# ---------------------------------------------------------------- precomputed scores

def load_scores(path: str | Path | None = None) -> dict:
    """The precomputed per-item results (data/eval/scores.json, written by utils/precompute_eval_scores.py):
    {"runs": [{"model", "task", "shots", "chat", "ids", "correct" (a '0'/'1' string), ...}], "command", ...}."""
    path = Path(path) if path is not None else SCORES_FILE
    if not path.is_file():
        raise CourseError(f"no precomputed scores at {path}: run utils/precompute_eval_scores.py")
    return json.loads(path.read_text(encoding="utf-8"))


def run_result(model: str, name: str, shots: int = 0, chat: bool = False, scores: dict | None = None) -> EvalResult:
    """One precomputed run as an EvalResult (its per-item verdicts, outputs and ids)."""
    if scores is None:
        scores = load_scores()
    else:
        from .checks import record

        record("scores", scores, ("runs",), what="the precomputed scores (load_scores())")
    for run in scores["runs"]:
        if run["model"] == model and run["task"] == name and run["shots"] == shots and run["chat"] == chat:
            return EvalResult(name, model, shots, chat, [c == "1" for c in run["correct"]],
                              [c == "1" for c in run.get("correct_norm", "")], run.get("outputs", []), run["ids"])
    have = sorted({(r["model"], r["task"], r["shots"], r["chat"]) for r in scores["runs"]})
    raise CourseError(f"no precomputed run for {model!r} on {name!r} ({shots}-shot, chat={chat}); have: {have}")


def measured_accuracy(model: str, name: str, shots: int = 0, chat: bool = False) -> tuple[float, float, float]:
    """(accuracy, 95% low, 95% high) of a precomputed run on the 200-item test split: for the chooser."""
    r = run_result(model, name, shots, chat)
    return (r.accuracy, *r.interval())


def measured_models() -> list[str]:
    return sorted({r["model"] for r in load_scores()["runs"]})


def bits_per_byte(model, tokenizer, texts: str | Sequence[str]) -> float:
    """Cross-entropy per UTF-8 byte, in bits, under the course's perplexity protocol: comparable across
    tokenizers (a perplexity per token is not: a byte tokenizer has ~4x more, easier tokens than a BPE one).

    = ln(perplexity) x scored tokens / (ln 2 x bytes of the scored text)."""
    from .perplexity import perplexity

    texts = [texts] if isinstance(texts, str) else list(texts)
    ppl = perplexity(model, tokenizer, texts)
    scored = sum(len(tokenizer(t)["input_ids"]) - 1 for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return math.log(ppl) * scored / (math.log(2) * n_bytes)


PERPLEXITY_PROTOCOL = ("bits per byte = ln(perplexity) x scored tokens / (ln 2 x bytes), with the perplexity from "
                       "slmcourse.perplexity (windows of 256 tokens, stride 128, each token scored once)")

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
