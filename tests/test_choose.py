"""slmcourse.choose: the decision tool ranks the catalogue against constraints, with reasons."""
import pytest

from slmcourse import CourseError
from slmcourse import choose as C
from slmcourse.catalogue import all_cards
from slmcourse.memory import GiB, fit


def test_every_catalogue_licence_is_classified():
    assert {c.licence for c in all_cards()} <= set(C.LICENCE_CLASS)


def test_tasks_come_from_the_source_table_and_the_family():
    assert "code" in C.tasks_of("codellama-7b")
    assert "translation" in C.tasks_of("flan-t5-small") and "summarization" in C.tasks_of("flan-t5-small")
    assert "classification" in C.tasks_of("bert-tiny") and "embeddings" in C.tasks_of("bert-tiny")
    assert "text generation" in C.tasks_of("mpt-7b")
    assert C.tasks_of("smollm2-135m") == ("chat", "text generation")
    assert C.tasks_of("all-minilm-l6-v2") == ("classification", "embeddings")
    assert all(set(C.tasks_of(c)) <= set(C.TASKS) and C.tasks_of(c) for c in all_cards())


def test_permissive_licence_excludes_custom_and_non_commercial_terms():
    ranked = C.choose(licence="permissive", include_rejected=False)
    keys = {c.key for c in ranked}
    assert "opt-125m" not in keys and "gemma-2b" not in keys and "codellama-7b" not in keys
    assert "stablelm-3b" not in keys and "phi-2" in keys
    commercial = {c.key for c in C.choose(licence="commercial", include_rejected=False)}
    assert "gemma-2b" in commercial and "stablelm-3b" in commercial and "opt-125m" not in commercial


def test_memory_and_context_constraints_agree_with_fit():
    ranked = C.choose(task="chat", memory_gib=1.0, precision="bf16", context=2048, include_rejected=False)
    assert ranked, "SmolLM2 at least fits in 1 GiB"
    for cand in ranked:
        assert cand.memory_bytes == fit(cand.key, "bf16", 2048).total <= 1 * GiB
        assert "chat" in C.tasks_of(cand.key)
    assert ranked[0].key == max(ranked, key=lambda c: c.params).key      # quality: largest first
    small_first = C.choose(task="chat", memory_gib=1.0, prefer="efficiency", include_rejected=False)
    assert small_first[0].params == min(c.params for c in small_first)
    long = C.choose(context=16_384, include_rejected=False)
    assert {c.key for c in long} == {c.key for c in all_cards() if c.context_length >= 16_384}


def test_multilingual_and_reasons():
    ranked = C.choose(task="text generation", multilingual=True, device="mybinder.org session",
                      include_rejected=False)
    assert [c.key for c in ranked] == ["gemma-3-270m"]
    falcon = C.evaluate("falcon-1b", C.Constraints(multilingual=True))
    assert not falcon.ok and any("RefinedWeb" in r for r in falcon.reasons)
    assert any("English-centric" in f for f in falcon.failed)


def test_rejected_models_follow_with_why():
    ranked = C.choose(task="code", memory_gib=4.0, precision="int4")
    oks = [c.ok for c in ranked]
    assert oks == sorted(oks, reverse=True)
    rejected = [c for c in ranked if not c.ok]
    assert all(c.failed for c in rejected)
    rows = C.table(ranked)
    assert rows[0]["rank"] == 1 and rows[-1]["meets all"] == "no" and rows[-1]["why not"]


def test_latency_budget_uses_the_planner():
    ranked = C.choose(task="chat", device="Raspberry Pi 5 (8 GB)", precision="int4", latency_ms=100,
                      include_rejected=False)
    assert ranked and all(c.tokens_per_s is not None and 1000 / c.tokens_per_s <= 100 for c in ranked)
    assert "mistral-7b" not in {c.key for c in ranked}


@pytest.mark.parametrize("kwargs, message", [
    ({"task": "poetry"}, "unknown task"),
    ({"memory_gib": -1}, "memory"),
    ({"device": "a toaster"}, "unknown device"),
    ({"precision": "fp8"}, "precision"),
    ({"context": 0}, "context"),
    ({"licence": "free"}, "licence"),
    ({"latency_ms": 50}, "target device"),
    ({"colour": "red"}, "unknown constraint"),
])
def test_clear_errors(kwargs, message):
    with pytest.raises(CourseError, match=message):
        C.choose(**kwargs)
    with pytest.raises(CourseError, match="prefer"):
        C.choose(prefer="cheapest")


# --- the chooser explorer, driven headless -------------------------------------------------------
def test_chooser_explorer():
    from slmcourse.explorers.deployment import chooser_explorer

    box = chooser_explorer(task="chat", device="Laptop (16 GB RAM)", licence="commercial")
    assert "meet every constraint" in box.result.value and "✔" in box.result.value
    box.controls["device"].value = "mybinder.org session"
    box.controls["context"].value = 32768
    box.controls["multilingual"].value = True
    assert "No model meets every constraint" in box.result.value
    box.controls["context"].value = 0
    assert "Cannot compute this" in box.result.value and "context" in box.result.value
    box.controls["context"].value = 2048
    box.controls["latency_ms"].value = 50.0              # mybinder is not a speed target: a message
    assert "Cannot compute this" in box.result.value and "target device" in box.result.value
    box.controls["device"].value = "Raspberry Pi 5 (8 GB)"
    box.controls["task"].value = "text generation"
    assert "Gemma-3-270M" in box.result.value
