"""Choosing a small language model: constraints in, ranked candidates with their reasons out.

Lesson 14's decision tool. It turns the source's "implementation considerations" (hardware, task,
deployment context) into checks on the catalogue:

- memory     - weights + KV cache + activations at a precision and context (slmcourse.memory.fit);
- latency    - expected decode speed on a target device (slmcourse.bench.plan_deployment);
- licence    - what the weights' licence allows (permissive, commercial use with terms, research only);
- task       - what the model is built for (its family and the source table's applications);
- tuning     - chat and instruction tasks need a chat- or instruction-tuned model (catalogue `tuning`,
               read from each model card): a base model only continues text;
- languages  - English-only training data or multilingual;
- context    - the longest context the model was trained for.

Every candidate comes back with one line per check, passed or failed, so a learner sees WHY a model
is ranked where it is, not just a list.

What the ranking rests on (QUALITY_BASIS): among the models that pass every check, `prefer="quality"`
orders by parameter count, a stated proxy (within a family and a training recipe, more parameters usually
score better) - except that the models the course has *measured* (lesson 10's precomputed scores:
SmolLM2-135M-Instruct and Gemma-3-270M on its three 200-item test sets, `measured_quality`) are ordered
among themselves by their measured accuracy, and say so in their reasons. Test the top candidates on
your own task.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .catalogue import ModelCard, all_cards, get
from .catalogue import find as find_card
from .errors import CourseError
from .memory import DEVICES, FORMATS, GiB, PRECISIONS, fit

# The quantized format the chooser and its explorer suggest: a real GGUF format at its real bits per
# weight (memory.FORMATS), not the ideal "int4" bound that no file reaches.
DEFAULT_QUANTIZED = "Q4_K_M"

QUALITY_BASIS = ("parameter count, a stated proxy: more parameters usually means a better model only within "
                 "one family and training recipe; the models the course measured (lesson 10) are ordered among "
                 "themselves by their measured accuracy instead - test the top candidates on your own task")
# The setting the measured quality is read at: every task 0-shot, plain prompt (the one run every model has).
MEASURED_SETTING = {"shots": 0, "chat": False}

# ---------------------------------------------------------------------------------------------
# Licences: what each licence in the catalogue allows
# ---------------------------------------------------------------------------------------------
LICENCE_CLASS = {
    "MIT": "permissive",
    "Apache-2.0": "permissive",
    "CC-BY-SA-4.0": "share-alike",
    "Llama 2 Community License": "custom terms",
    "Gemma Terms of Use": "custom terms",
    "OPT-175B licence agreement (non-commercial research)": "non-commercial",
    # the 2024-26 block (choose(..., include_newest=True))
    "Llama 3.2 Community License": "custom terms",
    "LFM Open License v1.0": "custom terms",
    "DeepSeek Model License": "custom terms",
    "Falcon LLM License (TII Falcon License 2.0, based on Apache 2.0)": "custom terms",
}
LICENCE_MEANING = {
    "permissive": "use, change and sell freely; keep the licence notice",
    "share-alike": "commercial use allowed, but shared derivatives must carry the same licence",
    "custom terms": "commercial use allowed under the owner's terms, with a use policy (read them)",
    "non-commercial": "research and non-commercial use only",
}
# What a user asks for -> which licence classes satisfy it.
LICENCE_NEEDS = {
    "any": ("permissive", "share-alike", "custom terms", "non-commercial"),
    "commercial": ("permissive", "share-alike", "custom terms"),
    "permissive": ("permissive",),
}

# ---------------------------------------------------------------------------------------------
# Tasks: from the source table's "Applications" column, the family, and the bundled models' cards
# ---------------------------------------------------------------------------------------------
TASKS = ("chat", "instruction following", "text generation", "code", "reasoning", "classification",
         "embeddings", "question answering", "translation", "summarization")
# Tasks that need a tuned model, and the tunings (catalogue.TUNINGS) that serve them.
TUNING_NEEDS = {"chat": ("chat", "instruct"), "instruction following": ("instruct", "chat")}
TUNING_MEANING = {
    "base": "a base model: it continues text, it is not tuned to follow instructions or hold a conversation",
    "instruct": "instruction-tuned: it follows an instruction (through its prompt or chat template)",
    "chat": "chat-tuned: it holds a conversation through its chat template",
}
_KEYWORDS = {   # whole words (regular expressions) looked for in the source table's text
    "chat": r"\bchat\b",
    "instruction following": r"\binstruction[- ]following\b",
    "text generation": r"\btext generation\b|\bgeneral text\b",
    "code": r"\bcod(e|ing)\b",
    "reasoning": r"\breasoning\b",
    "classification": r"\bclassification\b|\bnlu\b|\bsentiment\b|\bner\b",
    "question answering": r"\bqa\b|\bquestion answering\b",
    "translation": r"\btranslation\b",
    "summarization": r"\bsummarization\b",
    "embeddings": r"\bfeature extraction\b",
}
# The bundled models are not in the source table; their tasks come from their model cards.
_BUNDLED_TASKS = {
    "smollm2-135m": ("chat", "text generation"),          # instruction-tuned (its chat template, lesson 3)
    "gemma-3-270m": ("text generation",),                 # a base model, meant to be fine-tuned (lesson 11)
    "all-minilm-l6-v2": ("embeddings", "classification"),  # sentence embeddings, similarity (lesson 8)
}


def tasks_of(model: str | ModelCard) -> tuple[str, ...]:
    """The tasks a catalogued model is meant for, in the order of TASKS.

    From the source table's applications and the family; every instruction- or chat-tuned generator
    also serves "instruction following". Whether a chat task gets a *tuned* model is the separate
    tuning check (the source table lists chat for several base models).
    """
    card = get(model)
    if card.key in _BUNDLED_TASKS:
        found = set(_BUNDLED_TASKS[card.key])
        if card.tuning != "base":
            found.add("instruction following")
        return tuple(t for t in TASKS if t in found)
    text = card.source.get("applications", "").lower()
    found = {task for task, pattern in _KEYWORDS.items() if re.search(pattern, text)}
    if card.tuning != "base" and card.family != "encoder":
        found.add("instruction following")
        if card.era:  # lesson 7's 2024-26 block: post-trained with a multi-turn chat template
            found.add("chat")
    if card.family == "decoder-only":
        found.add("text generation")
    if card.family == "encoder":
        found.add("embeddings")  # any encoder gives (mean-pooled) embeddings
    return tuple(t for t in TASKS if t in found)


# ---------------------------------------------------------------------------------------------
# Languages: English-centric unless the model's card says otherwise
# ---------------------------------------------------------------------------------------------
MULTILINGUAL = {
    "gemma-3-270m": "Gemma 3 model card: trained on data in over 140 languages",
    "flan-t5-small": "FLAN-T5 model card: instruction-tuned on tasks in many languages, translation included",
    # lesson 7's 2024-26 block (ranked with choose(..., include_newest=True))
    "qwen3-0.6b": "Qwen3 model card: supports over 100 languages and dialects",
    "llama-3.2-1b": "Llama 3.2 model card: officially supports 8 languages (English, German, French, Italian, "
                    "Portuguese, Hindi, Spanish, Thai)",
    "smollm3-3b": "SmolLM3 model card: English, French, Spanish, German, Italian and Portuguese",
    "lfm2-1.2b": "LFM2 model card: English, Arabic, Chinese, French, German, Japanese, Korean and Spanish",
    "granite-4.0-h-micro": "Granite 4.0 model card: 12 languages, English, German, Spanish, French, Japanese, "
                           "Portuguese, Arabic, Czech, Italian, Korean, Dutch and Chinese",
    "qwen3.5-0.8b": "Qwen3.5 model card: 201 languages and dialects",
    "falcon-h1-0.5b": "Falcon-H1 blog: 18 languages supported natively",
    "gemma-3n-e4b": "Gemma 3n model card: trained on data in over 140 languages",
    "embeddinggemma-300m": "EmbeddingGemma model card: trained on data in over 100 languages",
}
LANGUAGE_NOTES = {
    "falcon-1b": "the source table says 'multilingual', but Falcon-RW-1B was trained on English web data "
                 "(RefinedWeb) only",
    "codellama-7b": "'multilingual' in the source table means programming languages; its natural language is English",
}


@lru_cache(maxsize=1)
def _measured_runs() -> dict[str, dict[str, tuple[float, float, float]]]:
    """model -> {task: (accuracy, 95% low, 95% high)} of lesson 10's precomputed runs at MEASURED_SETTING."""
    from . import evaluate as ev

    try:
        scores = ev.load_scores()
    except CourseError:
        return {}
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for run in scores["runs"]:
        if run["shots"] == MEASURED_SETTING["shots"] and run["chat"] == MEASURED_SETTING["chat"]:
            r = ev.run_result(run["model"], run["task"], scores=scores, **MEASURED_SETTING)
            out.setdefault(run["model"], {})[run["task"]] = (r.accuracy, *r.interval())
    return out


def measured_quality(model: str | ModelCard) -> dict | None:
    """The course's own measurement of a catalogued model, or None if it has none.

    From lesson 10's precomputed runs (slmcourse.evaluate.run_result, data/eval/scores.json): accuracy with its
    bootstrap 95 % interval on each task's 200 test items, 0-shot with a plain prompt. So that the measured models
    are compared like for like, `score` is the mean over the tasks that *every* measured catalogue model has.
    Returns {"score", "tasks": {task: (acc, low, high)}, "text"}."""
    card = get(model)
    runs = _measured_runs()
    measured = {k: v for k, v in runs.items() if find_card(k) is not None}
    if card.key not in measured:
        return None
    from .evaluate import TASKS as EVAL_TASKS

    common = [t for t in EVAL_TASKS if t in runs[card.key] and all(t in v for v in measured.values())]
    if not common:
        return None
    rows = [(t, *runs[card.key][t]) for t in common]
    score = sum(acc for _, acc, _, _ in rows) / len(rows)
    parts = ", ".join(f"{name} {acc:.0%} [{lo:.0%}, {hi:.0%}]" for name, acc, lo, hi in rows)
    return {"score": score, "tasks": {name: (acc, lo, hi) for name, acc, lo, hi in rows},
            "text": f"quality measured by the course (lesson 10, 200 test items per task, 0-shot): mean accuracy "
                    f"{score:.1%} over {parts}"}


def is_multilingual(model: str | ModelCard) -> bool:
    return get(model).key in MULTILINGUAL


def tuning_ok(model: str | ModelCard, task: str | None) -> bool:
    """Does the model's tuning serve the task? Chat and instruction tasks need a tuned model."""
    return task not in TUNING_NEEDS or get(model).tuning in TUNING_NEEDS[task]


def ranking_basis(prefer: str = "quality") -> str:
    """One sentence: what the order of the models that pass every check rests on."""
    if prefer not in PREFERENCES:
        raise CourseError(f"prefer must be 'quality' or 'efficiency', got {prefer!r}")
    if prefer == "quality":
        return "largest first, by " + QUALITY_BASIS
    return "smallest first: fewest parameters, so least memory, fastest and cheapest per token"


# ---------------------------------------------------------------------------------------------
# The decision tool
# ---------------------------------------------------------------------------------------------
PREFERENCES = ("quality", "efficiency")


@dataclass(frozen=True)
class Constraints:
    """What the deployment needs. None (or "any") switches a check off."""

    task: str | None = None
    memory_gib: float | None = None
    device: str | None = None           # a memory.DEVICES name: its usable memory and, with latency, speed
    precision: str = "bf16"
    context: int = 2048
    licence: str = "any"                # "any", "commercial" or "permissive"
    multilingual: bool = False
    latency_ms: float | None = None     # decode budget per token on `device` (needs a bench.TARGETS device)
    efficiency: float = 0.5             # share of the bandwidth bound reached (lesson 12 measures it)

    def __post_init__(self) -> None:
        self.check()  # refuse a bad constraint when it is written, not later inside choose()

    def check(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise CourseError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.memory_gib is not None and (not isinstance(self.memory_gib, (int, float))
                                            or isinstance(self.memory_gib, bool) or self.memory_gib <= 0):
            raise CourseError(f"memory must be a number of GiB > 0, got {self.memory_gib!r}")
        if self.device is not None and self.device not in DEVICES:
            raise CourseError(f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise CourseError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if not isinstance(self.context, int) or isinstance(self.context, bool) or self.context < 1:
            raise CourseError(f"context must be a whole number of tokens >= 1, got {self.context!r}")
        if self.licence not in LICENCE_NEEDS:
            raise CourseError(f"licence must be one of {', '.join(LICENCE_NEEDS)}, got {self.licence!r}")
        if self.latency_ms is not None:
            from .bench import TARGETS

            if not isinstance(self.latency_ms, (int, float)) or self.latency_ms <= 0:
                raise CourseError(f"the latency budget must be a number of milliseconds > 0, got {self.latency_ms!r}")
            if self.device not in TARGETS:
                raise CourseError("a latency budget needs a target device to estimate speed on: choose one of "
                                  f"{', '.join(TARGETS)}")


@dataclass
class Candidate:
    key: str
    name: str
    params: int
    ok: bool
    reasons: list[str] = field(default_factory=list)   # "+ ..." passed, "- ..." failed, "  ..." a note
    memory_bytes: int | None = None
    tokens_per_s: float | None = None
    quality: float | None = None        # the course's measured mean accuracy (measured_quality), if any

    @property
    def failed(self) -> list[str]:
        return [r[2:] for r in self.reasons if r.startswith("- ")]

    def summary(self) -> str:
        return f"{self.name} ({self.params / 1e6:,.0f}M): " + "; ".join(r[2:] for r in self.reasons)


def _memory_needed(card: ModelCard, c: Constraints) -> int:
    # fit() needs a device for its verdict; the total does not depend on it.
    return fit(card, precision=c.precision, context=min(c.context, card.context_length),
               device=c.device or "Laptop (16 GB RAM)").total


def evaluate(model: str | ModelCard, constraints: Constraints) -> Candidate:
    """Check one model against every constraint; one reason line per check, in the decision flow's order
    (task, tuning, licence, context, languages, memory, speed)."""
    card, c = get(model), constraints
    c.check()
    cand = Candidate(card.key, card.name, card.params, ok=True)

    def verdict(passed: bool, text: str) -> None:
        cand.reasons.append(("+ " if passed else "- ") + text)
        cand.ok = cand.ok and passed

    tasks = tasks_of(card)
    if c.task is not None:
        verdict(c.task in tasks, f"task {c.task}: {'built for it' if c.task in tasks else 'not built for it'} "
                                 f"({', '.join(tasks)})")
    if c.task in TUNING_NEEDS:
        verdict(tuning_ok(card, c.task), f"tuning {card.tuning}: {TUNING_MEANING[card.tuning]}")
    cls = LICENCE_CLASS.get(card.licence, "custom terms")
    verdict(cls in LICENCE_NEEDS[c.licence], f"licence {card.licence} ({cls}: {LICENCE_MEANING[cls]})")
    verdict(card.context_length >= c.context,
            f"context {card.context_length:,} tokens {'>=' if card.context_length >= c.context else '<'} "
            f"{c.context:,} needed")
    if c.multilingual:
        verdict(card.key in MULTILINGUAL, MULTILINGUAL.get(card.key, "English-centric training data"))
    if card.key in LANGUAGE_NOTES:
        cand.reasons.append("  " + LANGUAGE_NOTES[card.key])
    need = _memory_needed(card, c)
    cand.memory_bytes = need
    budgets = []
    if c.memory_gib is not None:
        budgets.append((c.memory_gib * GiB, f"{c.memory_gib:g} GiB"))
    if c.device is not None:
        budgets.append((DEVICES[c.device].usable_bytes, f"{DEVICES[c.device].usable_bytes / GiB:.1f} GiB usable "
                                                         f"on {c.device}"))
    for limit, label in budgets:
        verdict(need <= limit, f"memory {need / GiB:.2f} GiB at {c.precision} with {min(c.context, card.context_length):,}"
                               f" tokens {'<=' if need <= limit else '>'} {label}")
    if budgets and FORMATS[c.precision].ideal:
        cand.reasons.append(f"  {c.precision} is an ideal lower bound (bare bits, no scales): a real file needs "
                            f"more, e.g. {DEFAULT_QUANTIZED} at {FORMATS[DEFAULT_QUANTIZED].bits_per_weight} bits "
                            f"per weight")
    if c.latency_ms is not None:
        if card.family == "encoder":
            cand.reasons.append("  an encoder reads its input in one pass: no per-token latency")
        else:
            from .bench import plan_deployment

            plan = plan_deployment(card, c.device, c.precision, c.latency_ms, efficiency=c.efficiency,
                                   context=min(c.context, card.context_length))
            cand.tokens_per_s = plan.tokens_per_s
            verdict(plan.ms_per_token <= c.latency_ms,
                    f"expected ~{plan.ms_per_token:.1f} ms per token on {c.device} "
                    f"{'<=' if plan.ms_per_token <= c.latency_ms else '>'} {c.latency_ms:g} ms budget")
    measured = measured_quality(card)
    cand.quality = measured["score"] if measured else None
    cand.reasons.append("  " + (measured["text"] if measured else
                                "quality: no course measurement, so ranked by parameter count - a proxy that holds "
                                "only within one family and training recipe"))
    return cand


def choose(constraints: Constraints | None = None, prefer: str = "quality", include_rejected: bool = True,
           include_newest: bool = False, use_measured: bool = True, **kwargs) -> list[Candidate]:
    """Rank the catalogue against `constraints` (or keyword arguments of Constraints).

    Models meeting every constraint come first. Among them, `prefer="quality"` puts the largest first:
    parameter count is a stated proxy for quality (QUALITY_BASIS), except that the models lesson 10 measured
    are ordered among themselves by their measured accuracy (`measured_quality`; each candidate's reasons
    say which basis applies to it; `use_measured=False` keeps the plain size order, as lesson 14's own
    `shortlist` writes it). Test the top candidates on your task. `prefer="efficiency"` puts the smallest first (least memory, fastest,
    cheapest). Rejected models follow unless include_rejected=False: for a chat or instruction task the
    tuned ones before any base model, then those failing fewest checks first - so a base model is never
    ranked first for a chat or instruction task while the catalogue holds a tuned one.
    `include_newest=True` also ranks lesson 7's 2024-26 block (Qwen3, Llama 3.2, Gemma 3, ...).
    """
    if constraints is None:
        try:
            constraints = Constraints(**kwargs)
        except TypeError as err:
            raise CourseError(f"unknown constraint: {err}. Constraints are: task, memory_gib, device, precision, "
                              f"context, licence, multilingual, latency_ms, efficiency") from None
    elif kwargs:
        raise CourseError("give either a Constraints object or keyword arguments, not both")
    if prefer not in PREFERENCES:
        raise CourseError(f"prefer must be 'quality' or 'efficiency', got {prefer!r}")
    constraints.check()
    sign = -1 if prefer == "quality" else 1
    def order(cand: Candidate):
        wrong_tuning = not tuning_ok(cand.key, constraints.task)
        return (not cand.ok, wrong_tuning, len(cand.failed), sign * cand.params, cand.key)

    ranked = sorted((evaluate(card, constraints) for card in all_cards(include_newest=include_newest)), key=order)
    if not isinstance(use_measured, bool):
        raise CourseError(f"use_measured must be True or False, got {use_measured!r}")
    if prefer == "quality" and use_measured:
        # measured models keep the places the size proxy gave them, but are ordered among themselves by
        # their measured accuracy: measurement overrides the proxy where the course has one
        for group in {order(c)[:3] for c in ranked}:
            slots = [i for i, c in enumerate(ranked) if order(c)[:3] == group and c.quality is not None]
            by_score = sorted((ranked[i] for i in slots), key=lambda c: (-c.quality, -c.params, c.key))
            for i, cand in zip(slots, by_score):
                ranked[i] = cand
    return ranked if include_rejected else [cand for cand in ranked if cand.ok]


def table(candidates: list[Candidate]) -> list[dict]:
    """Rows for a pandas DataFrame: rank, model, size, verdict, and the reasons."""
    return [{"rank": i + 1, "model": cand.name, "tuning": get(cand.key).tuning, "params (M)": round(cand.params / 1e6),
             "memory (GiB)": round(cand.memory_bytes / GiB, 2) if cand.memory_bytes is not None else None,
             "meets all": "yes" if cand.ok else "no",
             "why not": "; ".join(cand.failed) if cand.failed else ""}
            for i, cand in enumerate(candidates)]

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
