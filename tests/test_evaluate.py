"""slmcourse.evaluate (lesson 10): scoring on a hand-worked example, answer extraction, intervals, paired
tests, the bundled item sets (checksums, sizes, splits kept apart) and the size ladder's shipped files."""
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from slmcourse import CourseError, evaluate as ev, ladder

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "utils" / "slmcourse" / "data" / "eval"

# the digests are written here on purpose: changing an item set must be a deliberate edit of this test too
DATA_SHA256 = {
    "arithmetic_dev.jsonl": "83873bd02efaf7662010fa89b52f9339afceee1b8e3098ea568aaec2bd622c75",
    "arithmetic_test.jsonl": "d1f171d80a4d210aad1e2e22719fb210cdcf77e204a387fd345ca0c3336c9e24",
    "arithmetic_train.jsonl": "b125366531ea85e73ae7de9fd1dd5c6bc1cb8c90718842896164c04d28871677",
    "facts_dev.jsonl": "62fa4e511d0328718a8e95c8adf3e92a99621cb5ef6997d5449e38d79a5e888c",
    "facts_test.jsonl": "c1925a4ef89c3e442edf91a8fbd8defa4a71734e5e16ff49e2fb7065ed0ed60c",
    "facts_train.jsonl": "25e9a8ad0a2c44ca5acdd700cf4d053fe901225df540c70d7ca76704066a2c5f",
    "sentiment_dev.jsonl": "0909eb8496a52613752ad8e1d966628ec0ee5a10067f1f48722faed35bb11273",
    "sentiment_test.jsonl": "3a71b62d4c9b385fd8fb16bdf144734538e6dd3ee1a60f5086c0cc566ba0f36b",
    "sentiment_train.jsonl": "0363a57e887af58774f32c18969524ae33813154294df3bbcffa7f519774fe3b",
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- a model whose numbers can be worked by hand

class CharTokenizer:
    """One token per character of a tiny alphabet (ids = positions in ALPHABET)."""
    ALPHABET = "ab xyQ:"
    pad_token_id = eos_token_id = 0
    chat_template = None

    def __call__(self, text, return_tensors=None, **_):
        return {"input_ids": [self.ALPHABET.index(c) for c in text]}


class Bigram(torch.nn.Module):
    """logits at position t = TABLE[token t]: the next-token distribution depends only on the current token."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None):
        class Out:
            pass
        out = Out()
        out.logits = self.table[input_ids]
        return out


def _bigram():
    n = len(CharTokenizer.ALPHABET)
    g = torch.Generator().manual_seed(0)
    return Bigram(torch.randn(n, n, generator=g).tolist())


def test_continuation_logprobs_match_a_hand_worked_sum():
    tok, model = CharTokenizer(), _bigram()
    logp = torch.log_softmax(model.table.detach(), dim=-1)
    i = CharTokenizer.ALPHABET.index
    # context "Q:" then continuation " ab": P(' '|':') P('a'|' ') P('b'|'a')
    by_hand = float(logp[i(":"), i(" ")] + logp[i(" "), i("a")] + logp[i("a"), i("b")])
    other = float(logp[i(":"), i(" ")] + logp[i(" "), i("x")])
    got = ev.continuation_logprobs(model, tok, "Q:", [" ab", " x"])
    assert got == pytest.approx([by_hand, other], abs=1e-5)


def test_trailing_space_of_the_context_moves_to_the_continuation():
    tok = CharTokenizer()
    assert ev.encode_pair(tok, "Q: ", "ab") == ev.encode_pair(tok, "Q:", " ab")


def test_pick_sum_and_length_normalised_follow_lm_eval():
    # lm-eval: pred = argmax(lls); pred_norm = argmax(lls / len(choice)) with len in characters
    lls, choices = [-6.0, -8.0], ["ab", "abcdefgh"]
    assert ev.pick(lls, choices) == 0
    assert ev.pick(lls, choices, normalise=True) == 1  # -3.0 per char vs -1.0 per char


def test_evaluate_mc_on_items_agrees_with_pick():
    tok, model = CharTokenizer(), _bigram()
    items = [{"id": f"t{k}", "question": "", "choices": ["ab", "x", "y"], "answer": k} for k in range(3)]
    # format_question would add letters outside the alphabet: score the raw continuations instead
    lps = ev.continuation_logprobs(model, tok, "Q:", [" ab", " x", " y"])
    best = ev.pick(lps, ["ab", "x", "y"])
    assert [best == it["answer"] for it in items].count(True) == 1


@pytest.mark.parametrize("text, number", [
    (" 68", "68"), ("The answer is 1,234.", "1234"), (" -7\n\nQuestion: What is 3 plus 4?\nAnswer: 7", "-7"),
    (" 12.50 dollars", "12.5"), (" 3.0", "3"), ("no idea", None), ("\n\n 5", "5"), (" 42.", "42"),
])
def test_extract_number(text, number):
    assert ev.extract_number(text) == number


def test_exact_match():
    assert ev.exact_match("68", "68") and not ev.exact_match(None, "68") and not ev.exact_match("86", "68")


# ---------------------------------------------------------------- statistics

def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_n():
    small = [1] * 7 + [0] * 3
    big = small * 20
    lo_s, hi_s = ev.bootstrap_ci(small)
    lo_b, hi_b = ev.bootstrap_ci(big)
    assert lo_s <= 0.7 <= hi_s and lo_b <= 0.7 <= hi_b
    assert hi_b - lo_b < hi_s - lo_s
    # close to the normal approximation for 200 items: 0.7 +- 1.96 sqrt(0.21 / 200)
    half = 1.96 * math.sqrt(0.7 * 0.3 / 200)
    assert lo_b == pytest.approx(0.7 - half, abs=0.02) and hi_b == pytest.approx(0.7 + half, abs=0.02)
    assert ev.bootstrap_ci(big) == ev.bootstrap_ci(big)  # seeded


def test_bootstrap_rejects_non_binary_and_empty():
    with pytest.raises(CourseError):
        ev.bootstrap_ci([0.5, 1])
    with pytest.raises(CourseError):
        ev.bootstrap_ci([])


def test_mcnemar_exact_p_value_by_hand():
    a = [1] * 10 + [1] * 8 + [0] * 2 + [0] * 5  # both right 10, only a 8, only b 2, both wrong 5
    b = [1] * 10 + [0] * 8 + [1] * 2 + [0] * 5
    only_a, only_b, p = ev.mcnemar(a, b)
    assert (only_a, only_b) == (8, 2)
    assert p == pytest.approx(2 * sum(math.comb(10, i) for i in range(3)) / 2 ** 10)  # 0.109375
    assert ev.mcnemar(a, a) == (0, 0, 1.0)
    with pytest.raises(CourseError):
        ev.mcnemar([1, 0], [1])


def test_paired_bootstrap_difference_and_interval():
    a = [1] * 10 + [1] * 8 + [0] * 2 + [0] * 5
    b = [1] * 10 + [0] * 8 + [1] * 2 + [0] * 5
    d, lo, hi = ev.paired_bootstrap(a, b)
    assert d == pytest.approx(6 / 25) and lo < d < hi
    d0, lo0, hi0 = ev.paired_bootstrap(a, a)
    assert d0 == lo0 == hi0 == 0.0


def test_contamination_finds_shared_ngrams():
    items = [{"id": "1", "question": "the cat sat on the mat today", "answer": "4"},
             {"id": "2", "question": "what is two plus two", "answer": "4"}]
    share, hits = ev.contamination(items, "Yesterday the cat sat on the mat today, again.", n=5)
    assert hits == ["1"] and share == 0.5


# ---------------------------------------------------------------- data

def test_data_files_have_their_checksums():
    for name, digest in DATA_SHA256.items():
        assert sha(EVAL / name) == digest, f"{name} changed: re-run utils/make_eval_sets.py or update the test"
    listed = dict(line.split()[::-1] for line in (EVAL / "SHA256SUMS").read_text().splitlines())
    assert listed == DATA_SHA256


def test_generator_reproduces_the_files(tmp_path):
    code = ("import sys; sys.path.insert(0, 'utils'); import make_eval_sets as m, pathlib; "
            f"m.OUT = pathlib.Path({str(tmp_path)!r}); m.main()")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    for name, digest in DATA_SHA256.items():
        assert sha(tmp_path / name) == digest


@pytest.mark.parametrize("name", list(ev.TASKS))
def test_sizes_and_splits_kept_apart(name):
    test, dev, train = (ev.load_items(name, s) for s in ("test", "dev", "train"))
    assert (len(test), len(dev), len(train)) == (200, 50, 2000)
    key = lambda it: (it["question"], tuple(it.get("choices", [])))
    assert len({key(i) for i in test + dev}) == 250
    assert not {key(i) for i in train} & {key(i) for i in test + dev}
    if ev.TASKS[name].kind == "mc":
        assert all(0 <= it["answer"] < ev.TASKS[name].n_choices == len(it["choices"]) for it in test)


def test_few_shot_prompt_never_shows_the_item_itself():
    item = ev.load_items("facts", "dev")[0]
    prompt = ev.few_shot_prompt("facts", item, shots=49)
    assert prompt.count(item["question"] + "\nAnswer:") >= 1
    assert prompt.count("\n\n") == 49 and prompt.endswith("Answer:")
    with pytest.raises(CourseError):
        ev.few_shot_prompt("facts", item, shots=51)


def test_unknown_task_and_split():
    with pytest.raises(CourseError):
        ev.load_items("poetry")
    with pytest.raises(CourseError):
        ev.load_items("facts", "validation")


# ---------------------------------------------------------------- the size ladder and precomputed scores

def test_ladder_files_match_their_checksums_and_budget():
    sums = ladder.checksums()
    assert set(sums) == set(ladder.SIZES)
    total = 0
    for name, digest in sums.items():
        path = ladder.weights_file(name)
        assert sha(path) == digest
        total += path.stat().st_size
    assert total <= 25 * 2 ** 20
    params = [ladder.parameters(n) for n in ladder.SIZES]
    assert params == sorted(params) and len(set(params)) == 4


def test_ladder_loads_and_scores():
    model, tok = ladder.load_ladder("ladder-xs")
    item = ev.load_items("sentiment", "test")[0]
    lps = ev.continuation_logprobs(model, tok, ev.format_question("sentiment", item), [" negative", " positive"])
    assert all(math.isfinite(x) and x < 0 for x in lps)


def test_ladder_training_record_is_the_stated_budget():
    """ladder_train.json (what the lesson and the data README quote) was made with today's RECIPE: every size saw
    RECIPE's steps x batch x context tokens, one loss per step."""
    record = json.loads((ladder.LADDER_DIR / "ladder_train.json").read_text())
    assert record["recipe"] == ladder.RECIPE
    assert ladder.TOKENS_SEEN == ladder.RECIPE["steps"] * ladder.RECIPE["batch"] * ladder.RECIPE["context"]
    for name in ladder.SIZES:
        run = record["models"][name]
        assert run["parameters"] == ladder.parameters(name)
        assert len(run["losses"]) == ladder.RECIPE["steps"] and all(math.isfinite(x) for x in run["losses"])


@pytest.mark.parametrize("name,task", [("ladder-xs", "sentiment"), ("ladder-l", "facts"), ("ladder-m", "arithmetic")])
def test_precomputed_ladder_scores_come_from_the_shipped_weights(name, task):
    """Retraining the ladder without re-running utils/precompute_eval_scores.py leaves stale scores: re-score the
    first items of one run per task with the shipped weights and compare item by item."""
    model, tok = ladder.load_ladder(name)
    run = ev.run_result(name, task)
    items = ev.load_items(task, "test", limit=12)
    live = ev.evaluate(model, tok, task, items, model_name=name, max_new_tokens=8)
    assert live.ids == run.ids[:12]
    assert live.correct == run.correct[:12]
    if task == "arithmetic":
        assert [o.strip()[:40] for o in live.outputs] == run.outputs[:12]


def test_precomputed_scores_are_consistent_with_the_items():
    scores = ev.load_scores()
    assert scores["runs"], "no precomputed runs"
    for run in scores["runs"]:
        ids = [it["id"] for it in ev.load_items(run["task"], "test")]
        assert run["ids"] == ids[:len(run["ids"])] and len(run["correct"]) == len(run["ids"])
    first = scores["runs"][0]
    acc, lo, hi = ev.measured_accuracy(first["model"], first["task"], first["shots"], first["chat"])
    assert lo <= acc <= hi


def test_explorer_summary_and_widget():
    from slmcourse.explorers.evaluation import evaluation_explorer, evaluation_summary

    s = evaluation_summary("sentiment", "ladder-l", 0, False)
    assert s.n == 200 and s.low <= s.accuracy <= s.high and s.chance == 0.5
    assert len(s.right) + len(s.wrong) > 0
    box = evaluation_explorer(task="sentiment", model="ladder-l")
    assert "ladder-l on sentiment" in box.result.value
    box.controls["chat"].value = True  # no chat run for the ladder: a message, not a traceback
    assert "Cannot compute this" in box.result.value
