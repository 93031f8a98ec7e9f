"""Lesson 11's chat-format fine-tuning helpers: the bundled pairs parse, every example is written in the
model's own chat template, the labels mask everything but the answer and its end-of-turn token, and
answer_perplexity agrees with transformers' own masked loss."""
import math

import pytest
import torch

from slmcourse import CourseError, scaled_down
from slmcourse import sft


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from slmcourse import bundled
    from slmcourse.catalogue import get

    bundled.prepare("smollm2-135m", progress=False)
    return AutoTokenizer.from_pretrained(bundled.model_dir(get("smollm2-135m")))


def test_bundled_pairs_parse():
    train, heldout = sft.read_qa("domain_qa_train.txt"), sft.read_qa("domain_qa_heldout.txt")
    assert len(train) == 40 and len(heldout) == 8
    assert all(q.endswith("?") and a.split("Next: ")[-1].endswith(".") for q, a in train + heldout)
    assert not {q for q, _ in train} & {q for q, _ in heldout}       # held-out questions never trained on


def test_read_qa_rejects_a_bad_file(tmp_path, monkeypatch):
    import slmcourse.training as training

    monkeypatch.setattr(training, "read_data", lambda name: "Q: only a question\n\nQ: x\nA: y")
    with pytest.raises(CourseError, match="two lines"):
        sft.read_qa("whatever.txt")
    monkeypatch.setattr(training, "read_data", lambda name: "\n\n")
    with pytest.raises(CourseError, match="no question"):
        sft.read_qa("whatever.txt")


def test_labels_mask_everything_but_the_answer(tok):
    for question, answer in sft.read_qa("domain_qa_train.txt"):
        ids, labels = sft.chat_example(tok, question, answer)
        assert ids.shape == labels.shape and ids.dtype == labels.dtype == torch.long
        kept = labels != sft.IGNORE_INDEX
        assert torch.equal(labels[kept], ids[kept])
        # one contiguous run: the answer, then <|im_end|>
        where = kept.nonzero().flatten()
        assert torch.equal(where, torch.arange(int(where[0]), int(where[-1]) + 1))
        assert sft.trained_text(tok, labels) == answer
        assert sft.trained_text(tok, labels, skip_special_tokens=False) == answer + "<|im_end|>"
        # everything before the answer is exactly the templated prompt
        prompt = sft.chat_prompt_ids(tok, question)
        assert torch.equal(ids[:len(prompt)], prompt) and int(where[0]) == len(prompt)
        assert tok.decode(ids).startswith("<|im_start|>system\n")


def test_chat_example_errors(tok):
    with pytest.raises(CourseError, match="answer"):
        sft.chat_example(tok, "What is a super?", "  ")
    with pytest.raises(CourseError, match="question"):
        sft.chat_prompt_ids(tok, "")
    with pytest.raises(CourseError, match="at least one"):
        sft.chat_examples(tok, [])

    class NoTemplate:
        chat_template = None
    with pytest.raises(CourseError, match="no chat template"):
        sft.chat_prompt_ids(NoTemplate(), "Hello?")


def test_answer_perplexity_is_transformers_masked_loss(tok):
    model = scaled_down("smollm2-135m", seed=0, num_hidden_layers=2).eval()
    examples = sft.chat_examples(tok, sft.read_qa("domain_qa_heldout.txt")[:3])
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, labels in examples:
            n = int((labels[1:] != sft.IGNORE_INDEX).sum())
            total += model(input_ids=ids[None], labels=labels[None]).loss.item() * n
            count += n
    assert math.isclose(sft.answer_perplexity(model, examples), math.exp(total / count), rel_tol=1e-4)
    with pytest.raises(CourseError, match="at least one"):
        sft.answer_perplexity(model, [])
    ids, labels = examples[0]
    with pytest.raises(CourseError, match="no answer tokens"):
        sft.answer_perplexity(model, [(ids, torch.full_like(labels, sft.IGNORE_INDEX))])


def test_masking_keeps_only_the_answer_and_its_end_of_turn(tok):
    ids, labels = sft.chat_example(tok, "Is it warm enough?", "Yes. Next: open the hive.")
    kept = labels[labels != sft.IGNORE_INDEX]
    assert tok.convert_ids_to_tokens(int(kept[-1])) == "<|im_end|>"            # learns to stop
    assert tok.decode(kept, skip_special_tokens=True) == "Yes. Next: open the hive."
    start = int((labels != sft.IGNORE_INDEX).nonzero()[0])
    assert (labels[:start] == sft.IGNORE_INDEX).all() and torch.equal(labels[start:start + len(kept)], ids[start:start + len(kept)])
    assert torch.equal(ids[:start], sft.chat_prompt_ids(tok, "Is it warm enough?"))   # all of the prompt is masked


def test_mc_items_and_context(tok):
    items = sft.read_mc()
    assert len(items) == 24 and {i["answer"] for i in items} == {0, 1, 2, 3}
    train_questions = {q for q, _ in sft.read_qa("domain_qa_train.txt")}
    assert not {i["question"] for i in items} & train_questions
    text = sft.mc_context(tok, "Why?", passages=["note one."], shots=[("Q1?", "A1.")])
    assert text.count("<|im_start|>user") == 2 and "- note one." in text and text.endswith("<|im_start|>assistant\n")


def test_choice_logprobs_equal_evaluate_s_and_mc_correct(tok):
    from slmcourse import evaluate

    model = scaled_down("smollm2-135m")
    ctx = sft.mc_context(tok, "What do bees eat?")
    choices = ["nectar and pollen", "stones", "fondant in spring"]
    a = sft.choice_logprobs(model, tok, ctx, choices)
    b = evaluate.continuation_logprobs(model, tok, ctx, choices)
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    item = {"id": "x", "question": "What do bees eat?", "choices": choices,
            "answer": evaluate.pick(b, choices, normalise=True)}
    assert sft.mc_correct(model, tok, [item]) == [True]


def test_mc_correct_with_a_cached_shared_prefix_scores_as_evaluate_does(tok):
    """mc_correct runs the prompt all items share (system turn, few-shot turns) once and continues every item from
    a copy of its KV cache: the log-likelihoods stay those of evaluate.continuation_logprobs, item by item."""
    from slmcourse import evaluate

    model = scaled_down("smollm2-135m")
    shots = [("How heavy should a hive be?", "About 20 kg of stores."), ("When do I fit a mouse guard?", "In October.")]
    items = [{"id": str(i), "question": q, "choices": ch, "answer": 0} for i, (q, ch) in enumerate([
        ("What do bees eat?", ["nectar and pollen", "stones", "fondant"]),
        ("When is the hive opened?", ["above 15 °C", "at night", "in frost", "never"]),
        ("What is a super?", ["a box for honey", "a queen"])])]
    for i, item in enumerate(items):
        lp = evaluate.continuation_logprobs(model, tok, sft.mc_context(tok, item["question"], shots=shots), item["choices"])
        item["answer"] = evaluate.pick(lp, item["choices"], normalise=True) if i != 1 else \
            min(range(4), key=lambda j: lp[j] / len(item["choices"][j]))          # one wrong gold on purpose
        cached = sft._choice_logprobs(model, tok, sft.mc_context(tok, item["question"], shots=shots), item["choices"],
                                      sft._shared_prefix(model, [tok(sft.mc_context(tok, it["question"], shots=shots))
                                                                 ["input_ids"][:-1] for it in items]))
        assert max(abs(x - y) for x, y in zip(cached, lp)) < 1e-4
    assert sft.mc_correct(model, tok, items, shots=shots) == [True, False, True]
    assert sft._shared_prefix(model, [[1, 2, 3]]) is None and sft._shared_prefix(model, [[1, 2], [3, 4]]) is None
    ids, cache = sft._shared_prefix(model, [[5, 6, 7, 8], [5, 6, 7, 9], [5, 6, 7]])
    assert ids == [5, 6] and cache.get_seq_length() == 2               # every context keeps a token of its own
