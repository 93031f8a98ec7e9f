"""slmcourse.choose: the decision tool ranks the catalogue against constraints, with reasons."""
import pytest

from slmcourse import CourseError
from slmcourse import choose as C
from slmcourse.catalogue import all_cards, get
from slmcourse.memory import FORMATS, GiB, fit


def test_every_catalogue_licence_is_classified():
    assert {c.licence for c in all_cards()} <= set(C.LICENCE_CLASS)


def test_tasks_come_from_the_source_table_and_the_family():
    assert "code" in C.tasks_of("codellama-7b")
    assert "translation" in C.tasks_of("flan-t5-small") and "summarization" in C.tasks_of("flan-t5-small")
    assert "classification" in C.tasks_of("bert-tiny") and "embeddings" in C.tasks_of("bert-tiny")
    assert "text generation" in C.tasks_of("mpt-7b")
    assert C.tasks_of("smollm2-135m") == ("chat", "instruction following", "text generation")
    assert "instruction following" in C.tasks_of("flan-t5-small") and "instruction following" in C.tasks_of("zephyr-7b")
    assert "instruction following" not in C.tasks_of("mistral-7b")       # a base model
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
    ranked = C.choose(task="code", memory_gib=4.0, precision="Q4_K_M")
    oks = [c.ok for c in ranked]
    assert oks == sorted(oks, reverse=True)
    rejected = [c for c in ranked if not c.ok]
    assert all(c.failed for c in rejected)
    rows = C.table(ranked)
    assert rows[0]["rank"] == 1 and rows[-1]["meets all"] == "no" and rows[-1]["why not"]


def test_latency_budget_uses_the_planner():
    ranked = C.choose(task="chat", device="Raspberry Pi 5 (8 GB)", precision="Q4_K_M", latency_ms=200,
                      include_rejected=False)
    assert ranked and all(c.tokens_per_s is not None and 1000 / c.tokens_per_s <= 200 for c in ranked)
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


# --- tuning (issue 12.5): a base model never comes first for a chat or instruction task ----------
def test_seed_regression_base_models_no_longer_lead_a_chat_request():
    # The seed ranked Mistral-7B and MPT-7B, both base models, first for a chat request.
    for ranked in (C.choose(task="chat"), C.choose(task="chat", device="Laptop (16 GB RAM)", precision="Q4_K_M")):
        assert ranked[0].key not in ("mistral-7b", "mpt-7b")
        assert get(ranked[0].key).tuning in ("chat", "instruct")
    mistral = C.evaluate("mistral-7b", C.Constraints(task="chat"))
    assert not mistral.ok and any(f.startswith("tuning base") for f in mistral.failed)
    zephyr = C.evaluate("zephyr-7b", C.Constraints(task="chat"))   # Mistral-7B's chat fine-tune
    assert zephyr.ok and any(r.startswith("+ tuning chat") for r in zephyr.reasons)
    assert C.evaluate("mistral-7b", C.Constraints(task="text generation")).ok      # base is fine for that


@pytest.mark.parametrize("task", sorted(C.TUNING_NEEDS))
@pytest.mark.parametrize("device", ["mybinder.org session", "Raspberry Pi 5 (8 GB)", "Phone (8 GB RAM)",
                                    "Laptop (16 GB RAM)", "NVIDIA A100 (80 GB)"])
@pytest.mark.parametrize("precision", ["bf16", "Q8_0", "Q4_K_M", "int4"])
@pytest.mark.parametrize("licence", ["any", "permissive"])
def test_no_base_model_first_for_chat_or_instructions(task, device, precision, licence):
    for prefer in C.PREFERENCES:
        for context in (512, 4096, 32768):         # 32k: nothing passes, the rejects are ranked
            ranked = C.choose(task=task, device=device, precision=precision, licence=licence, context=context,
                              prefer=prefer)
            assert get(ranked[0].key).tuning != "base", (ranked[0].name, ranked[0].reasons)
            tuned_ok = [c for c in ranked if c.ok]
            assert all(get(c.key).tuning in C.TUNING_NEEDS[task] for c in tuned_ok)
            # every tuned candidate comes before every base one
            tunings = [get(c.key).tuning == "base" for c in ranked]
            assert tunings == sorted(tunings)


def test_the_quality_order_says_what_it_rests_on():
    basis = C.ranking_basis("quality")
    assert "parameter count" in basis and "proxy" in basis and "measured accuracy" in basis
    assert "smallest" in C.ranking_basis("efficiency")
    with pytest.raises(CourseError, match="prefer"):
        C.ranking_basis("best")
    rows = C.table(C.choose(task="chat", include_rejected=False))
    assert all(row["tuning"] in ("chat", "instruct") for row in rows)


def test_default_quantized_format_is_real_and_ideal_bounds_are_labelled():
    assert C.DEFAULT_QUANTIZED in FORMATS and not FORMATS[C.DEFAULT_QUANTIZED].ideal
    assert FORMATS[C.DEFAULT_QUANTIZED].bits_per_weight > 4.5
    # the seed's verdict "Mistral-7B at int4 fits an 8 GB phone" holds only for the ideal bound
    real = C.evaluate("mistral-7b", C.Constraints(device="Phone (8 GB RAM)", precision=C.DEFAULT_QUANTIZED))
    assert not real.ok and any(f.startswith("memory") for f in real.failed)
    for fmt in ("Q4_0", "Q4_1", "Q5_K_M", "Q8_0"):
        assert not C.evaluate("mistral-7b", C.Constraints(device="Phone (8 GB RAM)", precision=fmt)).ok
    ideal = C.evaluate("mistral-7b", C.Constraints(device="Phone (8 GB RAM)", precision="int4"))
    assert ideal.ok and any("ideal lower bound" in r for r in ideal.reasons)


# --- the chooser explorer, driven headless -------------------------------------------------------
def test_chooser_explorer():
    from slmcourse.explorers.chooser import chooser_explorer, format_options

    labels = dict((v, k) for k, v in format_options())
    assert list(labels)[-2:] == ["int8", "int4"] and "ideal" in labels["int4"] and "ideal" not in labels["Q4_K_M"]
    assert chooser_explorer().controls["include_newest"].value is True      # the 2024-26 block: on by default
    box = chooser_explorer(task="chat", device="Laptop (16 GB RAM)", licence="commercial", include_newest=False)
    assert box.controls["precision"].value == C.DEFAULT_QUANTIZED
    assert "parameter count" in box.result.value and "<td>base</td>" in box.result.value
    assert "Zephyr-7B" in box.result.value.split("</tr>")[1]           # first row: a chat model, not Mistral
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
    # the 2024-26 block is offered (and on by default); switching it off leaves the source-table catalogue
    box.controls["latency_ms"].value = 0.0
    box.controls["multilingual"].value = False
    box.controls["task"].value = "chat"
    off = box.result.value
    box.controls["include_newest"].value = True
    on = box.result.value
    assert any(name in on for name in ("Qwen3", "Llama-3.2", "Gemma-3-1B", "Phi-4-mini", "SmolLM3"))
    assert not any(name in off for name in ("Qwen3", "Llama-3.2", "Gemma-3-1B", "Phi-4-mini", "SmolLM3"))


# --- issue 14 point 5: measured quality where the course has it ---------------------------------
def test_measured_models_are_ordered_by_their_measured_accuracy_and_say_so():
    from slmcourse import evaluate as ev

    measured = [k for k in ("smollm2-135m", "gemma-3-270m") if C.measured_quality(k) is not None]
    assert "smollm2-135m" in measured
    q = C.measured_quality("smollm2-135m")
    assert q["tasks"] and set(q["tasks"]) <= set(ev.TASKS)
    for other in measured:                         # like for like: every measured model has the same tasks
        assert set(C.measured_quality(other)["tasks"]) == set(q["tasks"])
    runs = [ev.run_result("smollm2-135m", t, 0, False) for t in q["tasks"]]
    assert q["score"] == pytest.approx(sum(r.accuracy for r in runs) / len(runs))
    assert all(q["tasks"][r.task][0] == r.accuracy for r in runs)
    assert "measured by the course" in q["text"] and "200 test items" in q["text"]
    assert C.measured_quality("mistral-7b") is None and C.measured_quality("qwen3-0.6b") is None
    ranked = C.choose(task="text generation", device="Laptop (16 GB RAM)", include_rejected=False)
    for cand in ranked:
        notes = [r for r in cand.reasons if "quality" in r]
        assert len(notes) == 1
        assert ("measured by the course" in notes[0]) == (cand.key in measured)
        assert ("no course measurement" in notes[0]) == (cand.key not in measured)
    # measured models keep the slots the size proxy gives them but are ordered by their measured score
    keys = [c.key for c in ranked]
    by_size = [c.key for c in sorted(ranked, key=lambda c: (-c.params, c.key))]
    slots = sorted(keys.index(k) for k in measured)
    assert slots == sorted(by_size.index(k) for k in measured)
    scores = [ranked[i].quality for i in slots]
    assert scores == sorted(scores, reverse=True)
    unmeasured = [k for k in keys if k not in measured]
    assert unmeasured == [k for k in by_size if k not in measured]
    # efficiency keeps the plain smallest-first order
    small = C.choose(task="text generation", device="Laptop (16 GB RAM)", include_rejected=False, prefer="efficiency")
    assert [c.params for c in small] == sorted(c.params for c in small)


def test_measured_order_overrides_size_when_the_smaller_model_scores_higher(monkeypatch):
    fake = {"smollm2-135m": 0.9, "gemma-3-270m": 0.4}
    monkeypatch.setattr(C, "measured_quality", lambda m: ({"score": fake[get(m).key], "text": "quality measured by "
                                                           "the course (fake)"} if get(m).key in fake else None))
    keys = [c.key for c in C.choose(task="text generation", device="Laptop (16 GB RAM)", include_rejected=False)]
    assert keys.index("smollm2-135m") < keys.index("gemma-3-270m")          # smaller but measured better
    fake.update({"smollm2-135m": 0.3})
    keys = [c.key for c in C.choose(task="text generation", device="Laptop (16 GB RAM)", include_rejected=False)]
    assert keys.index("gemma-3-270m") < keys.index("smollm2-135m")
    fake.update({"smollm2-135m": 0.9})                                        # use_measured=False: size only
    plain = [c.key for c in C.choose(task="text generation", device="Laptop (16 GB RAM)", include_rejected=False,
                                     use_measured=False)]
    assert plain.index("gemma-3-270m") < plain.index("smollm2-135m")
    with pytest.raises(CourseError, match="use_measured"):
        C.choose(task="chat", use_measured="yes")
