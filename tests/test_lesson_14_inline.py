"""Lesson 14's inline decision (filter then rank) cannot drift from slmcourse.choose.

The notebook writes `failed_checks` (the checks one catalogue card fails, in the decision flow's order)
and `shortlist` (filter the catalogue, then sort the survivors by size); both are pulled out of the
notebook and compared with `choose.evaluate` / `choose.choose` on random deployments.
"""
import random

import pytest

from notebook_defs import notebook_definitions
from slmcourse import catalogue
from slmcourse import choose as C
from slmcourse.bench import TARGETS

NOTEBOOK = "course/14_choosing_and_future.ipynb"
DEFS = notebook_definitions(NOTEBOOK, ["failed_checks", "shortlist"])
FORMATS = ["bf16", "fp16", "Q8_0", "Q5_K_M", "Q4_K_M", "Q4_1", "Q4_0", "int4"]
# what the first word of a package reason line means, in the inline function's names
REASON = {"task": "task", "tuning": "tuning", "licence": "licence", "context": "context", "memory": "memory",
          "expected": "speed"}


def _deployment(rng):
    device = rng.choice(list(TARGETS))
    return dict(task=rng.choice(C.TASKS), device=device, fmt=rng.choice(FORMATS),
                context=rng.choice([256, 512, 2048, 4096, 8192, 16_384]),
                licence=rng.choice(list(C.LICENCE_NEEDS)),
                latency_ms=rng.choice([None, 20.0, 50.0, 100.0, 200.0, 1000.0]),
                prefer=rng.choice(C.PREFERENCES))


def _package(d):
    return C.Constraints(task=d["task"], device=d["device"], precision=d["fmt"], context=d["context"],
                         licence=d["licence"], latency_ms=d["latency_ms"])


@pytest.mark.parametrize("seed", range(6))
def test_failed_checks_names_the_same_failures_as_the_package(seed):
    rng = random.Random(seed)
    for _ in range(4):
        d = _deployment(rng)
        for card in catalogue.all_cards():
            mine = DEFS["failed_checks"](card, d["task"], d["device"], d["fmt"], d["context"], d["licence"],
                                         d["latency_ms"])
            cand = C.evaluate(card, _package(d))
            assert mine == [REASON[reason.split()[0]] for reason in cand.failed], (card.key, d)
            assert (not mine) == cand.ok


@pytest.mark.parametrize("seed", range(8))
def test_shortlist_ranks_like_choose(seed):
    rng = random.Random(100 + seed)
    for _ in range(5):
        d = _deployment(rng)
        mine = DEFS["shortlist"](**d)
        package = [c.name for c in C.choose(_package(d), prefer=d["prefer"], include_rejected=False,
                                            use_measured=False)]   # the lesson's shortlist: the size order only
        assert mine == package, d


def test_the_lessons_scenarios():
    shortlist = DEFS["shortlist"]
    assert shortlist("chat", "Laptop (16 GB RAM)")[0] == "Zephyr-7B"        # not the base Mistral-7B
    assert "Mistral-7B" not in shortlist("chat", "NVIDIA A100 (80 GB)", fmt="bf16")
    assert shortlist("classification", "Phone (8 GB RAM)", fmt="fp16", context=256, licence="permissive",
                     prefer="efficiency")[0] == "BERT-Tiny"
    assert "Mistral-7B" not in shortlist("text generation", "Phone (8 GB RAM)", fmt="Q4_K_M")
    assert "Mistral-7B" in shortlist("text generation", "Phone (8 GB RAM)", fmt="int4")   # the ideal bound only
