"""The generation loop from scratch (slmcourse.generation) against transformers, on the real SmolLM2."""
import pytest
import torch
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

import slmcourse
from slmcourse import generation as g
from slmcourse.errors import CourseError

PROMPT = "The three primary colours are"


@pytest.fixture(scope="module")
def smollm2():
    model, tokenizer = slmcourse.load("smollm2-135m", device="cpu")
    return model, tokenizer


@pytest.fixture(scope="module")
def prompt_ids(smollm2):
    _, tokenizer = smollm2
    return tokenizer(PROMPT, return_tensors="pt").input_ids


# ---- the pure filters against transformers' own processors ----------------------------------------

def _random_logits(seed=0, n=200):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("k", [1, 5, 50, 199, 200, 500])
def test_top_k_matches_transformers(k):
    logits = _random_logits(1)
    ours = g.top_k_filter(logits, k)
    theirs = TopKLogitsWarper(k)(None, logits[None].clone())[0]
    assert torch.equal(ours, theirs)
    assert g.survivors(ours.softmax(-1)) == min(k, 200)


@pytest.mark.parametrize("p", [0.01, 0.3, 0.9, 0.999])
def test_top_p_matches_transformers(p):
    logits = _random_logits(2)
    ours = g.top_p_filter(logits, p)
    theirs = TopPLogitsWarper(p)(None, logits[None].clone())[0]
    assert torch.equal(ours, theirs)
    kept = ours.softmax(-1) > 0
    assert logits.softmax(-1)[kept].sum() >= p - 1e-6            # the nucleus holds at least p
    assert kept[logits.argmax()]                                   # the best token always survives


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert g.survivors(g.top_p_filter(logits, 0.75).softmax(-1)) == 2
    assert g.survivors(g.top_p_filter(logits, 0.85).softmax(-1)) == 3
    assert g.survivors(g.top_p_filter(logits, 0.1).softmax(-1)) == 1
    assert torch.equal(g.top_p_filter(logits, 1.0), logits)


def test_temperature_and_repetition_penalty_match_transformers():
    logits = _random_logits(3)
    assert torch.allclose(g.apply_temperature(logits, 0.7), TemperatureLogitsWarper(0.7)(None, logits[None].clone())[0])
    previous = torch.tensor([[3, 7, 7, 150, 0]])
    theirs = RepetitionPenaltyLogitsProcessor(1.3)(previous, logits[None].clone())[0]
    assert torch.allclose(g.apply_repetition_penalty(logits, previous[0], 1.3), theirs)
    # a seen token always loses ground, whatever the sign of its logit
    penalised = g.apply_repetition_penalty(logits, [3, 7], 2.0)
    assert (penalised[[3, 7]] < logits[[3, 7]]).all()
    assert torch.equal(penalised[8:], logits[8:])


def test_temperature_sharpens_and_flattens():
    logits = _random_logits(4)
    entropy = lambda z: -(z.softmax(-1) * z.log_softmax(-1)).sum()
    assert entropy(g.apply_temperature(logits, 0.5)) < entropy(logits) < entropy(g.apply_temperature(logits, 2.0))
    assert g.apply_temperature(logits, 0.5).argmax() == logits.argmax()


def test_filter_stages_are_probabilities_in_order():
    logits = _random_logits(5)
    stages = g.filter_stages(logits, [1, 2], temperature=0.5, top_k=20, top_p=0.8, repetition_penalty=1.2)
    assert list(stages) == ["model", "repetition penalty", "temperature", "top-k", "top-p"]
    for probs in stages.values():
        assert torch.isclose(probs.sum(), torch.tensor(1.0), atol=1e-5)
    assert g.survivors(stages["top-k"]) == 20
    assert g.survivors(stages["top-p"]) <= 20
    assert g.top_tokens(stages["top-p"], n=1)[0][0] == int(stages["top-p"].argmax())


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=-3), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(top_p=0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(repetition_penalty=0), "repetition_penalty"),
    (dict(strategy="beam"), "strategy"),
    (dict(max_new_tokens=0), "max_new_tokens"),
])
def test_bad_settings_raise_course_error(kwargs, message):
    with pytest.raises(CourseError, match=message):
        g.check_settings(**kwargs)


def test_filters_reject_bad_input():
    with pytest.raises(CourseError, match="1-D"):
        g.top_k_filter(torch.zeros(2, 3), 1)
    with pytest.raises(CourseError, match="vocabulary"):
        g.apply_repetition_penalty(torch.zeros(5), [9], 1.5)
    with pytest.raises(CourseError):
        g.top_tokens(torch.ones(4) / 4, n=0)


# ---- the loop on the real model ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def greedy_reference(smollm2, prompt_ids):
    model, _ = smollm2
    return model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=12,
                          do_sample=False)[0, prompt_ids.shape[1]:].tolist()


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_loop_gives_exactly_the_tokens_of_model_generate(smollm2, prompt_ids, greedy_reference, use_cache):
    model, tokenizer = smollm2
    ours = g.generate(model, prompt_ids, 12, use_cache=use_cache, stop_tokens=tokenizer.eos_token_id)
    assert ours.new_ids == greedy_reference
    assert ours.forward_passes == len(ours.new_ids)
    n = prompt_ids.shape[1]
    if use_cache:   # the prompt once, then one token per step
        assert ours.tokens_fed == n + len(ours.new_ids) - 1
    else:           # the whole, growing sequence every step
        assert ours.tokens_fed == sum(n + i for i in range(len(ours.new_ids)))


def test_sampling_with_a_seed_matches_model_generate(smollm2, prompt_ids):
    model, tokenizer = smollm2
    settings = dict(temperature=0.8, top_k=50, top_p=0.9, repetition_penalty=1.2)
    torch.manual_seed(3)
    reference = model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=10,
                               do_sample=True, **settings)[0, prompt_ids.shape[1]:].tolist()
    ours = g.generate(model, prompt_ids, 10, strategy="sample", seed=3, stop_tokens=tokenizer.eos_token_id,
                      **settings)
    assert ours.new_ids == reference
    again = g.generate(model, prompt_ids, 10, strategy="sample", seed=3, stop_tokens=tokenizer.eos_token_id,
                       **settings)
    assert again.new_ids == ours.new_ids


def test_stop_tokens_end_generation(smollm2, prompt_ids, greedy_reference):
    model, _ = smollm2
    stop = greedy_reference[2]
    stopped = g.generate(model, prompt_ids, 6, stop_tokens=[stop])
    assert stopped.new_ids == greedy_reference[:greedy_reference.index(stop) + 1]
    assert stopped.stop_reason == "stop token"
    assert g.generate(model, prompt_ids, 2).stop_reason == "max_new_tokens"


def test_generate_text_and_chat_template(smollm2):
    model, tokenizer = smollm2
    text, result = g.generate_text(model, tokenizer, "What is the capital of France?", 8, chat=True)
    assert "Paris" in text
    assert result.prompt_ids[:2] == tokenizer("<|im_start|>system")["input_ids"]
    calls = []
    g.generate_text(model, tokenizer, "Hello", 3, stop_at_eos=False, on_token=lambda s, t: calls.append(s))
    assert calls == [0, 1, 2]


def test_loop_rejects_bad_input(smollm2):
    model, _ = smollm2
    with pytest.raises(CourseError, match="empty"):
        g.generate(model, [], 3)
    with pytest.raises(CourseError, match="one sequence"):
        g.generate(model, torch.ones(2, 3, dtype=torch.long), 3)
    with pytest.raises(CourseError, match="vocabulary"):
        g.generate(model, [10 ** 7], 3)
    with pytest.raises(CourseError, match="temperature"):
        g.generate(model, [1, 2], 3, strategy="sample", temperature=0)
    with pytest.raises(CourseError, match="stop_tokens"):
        g.generate(model, [1, 2], 3, stop_tokens=["x"])
    with pytest.raises(CourseError, match="encoder-decoder"):
        g.generate(slmcourse.scaled_down("flan-t5-small"), [1, 2], 3)
    with pytest.raises(CourseError, match="text"):
        g.generate_text(model, None, "   ")


def test_next_token_logits_agree_with_the_loop(smollm2, prompt_ids, greedy_reference):
    model, _ = smollm2
    logits = g.next_token_logits(model, prompt_ids)
    assert logits.shape == (model.config.vocab_size,)
    assert int(logits.argmax()) == greedy_reference[0]


# ---- the decoding explorer, headless -----------------------------------------------------------------

def test_decoding_explorer_generates_and_refuses_nonsense(smollm2):
    from slmcourse.explorers.decoding import decoding_explorer

    model, tokenizer = smollm2
    box = decoding_explorer(model, tokenizer, prompt="The capital of France is", strategy="greedy",
                            max_new_tokens=4)
    assert list(box.stages) == ["model", "repetition penalty", "temperature", "top-k", "top-p"]  # plotted at once
    assert bytes(box.figure.value).startswith(b"\x89PNG")
    box.button.click()
    assert "Paris" in box.result.value and "tokens/s" in box.result.value
    assert box.progress.value == box.progress.max and not box.button.disabled
    box.controls["temperature"].value = 0.0
    assert "Cannot compute this" in box.result.value and "temperature" in box.result.value
    assert bytes(box.figure.value) == b""
    box.button.click()                                       # refused again, nothing generated
    assert "temperature" in box.result.value
    box.controls["temperature"].value = 0.7
    box.controls["top_p"].value = 1.7
    assert "top_p" in box.result.value
    box.controls["top_p"].value = 0.9
    box.controls["top_k"].value = -1
    assert "top_k" in box.result.value
    box.controls["top_k"].value = 5
    assert g.survivors(box.stages["top-k"]) == 5
    box.controls["prompt"].value = "   "
    assert "prompt" in box.result.value
    box.controls["prompt"].value = "What is 2 + 2?"
    box.controls["chat"].value = True
    box.controls["strategy"].value = "sample"
    box.controls["max_new_tokens"].value = 3
    box.button.click()
    assert "stopped by" in box.result.value


def test_generate_runs_a_dynamically_quantized_model():
    """torch's dynamic int8 Linear exposes `weight` as a method: the prompt check reads the vocabulary anyway."""
    from slmcourse.generation import generate
    from slmcourse.models import scaled_down
    from slmcourse.quant import dynamic_int8

    model = dynamic_int8(scaled_down("smollm2-135m", seed=0))
    result = generate(model, [1, 2, 3], 3)
    assert len(result.new_ids) == 3
