"""Lesson 12 writes the time-to-first-token / decode measurement and the planner's decode-step formula inline;
they must stay equal to slmcourse.bench.time_generation and slmcourse.planner.decode_step (the validated copies
the lesson, the explorer, the deployment figures and the chooser use)."""
import math

import pytest
import torch

from notebook_defs import definition_names, notebook_definitions
from slmcourse import bench as B
from slmcourse import catalogue, scaled_down
from slmcourse import planner as P

NOTEBOOK = "course/12_deployment.ipynb"
NAMES = ["time_prefill_and_decode", "decode_step_seconds"]


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NOTEBOOK, NAMES)


@pytest.fixture(scope="module")
def tiny():
    return scaled_down("smollm2-135m").eval()     # SCALED-DOWN random-weight Llama


def test_every_inline_definition_is_checked():
    assert sorted(definition_names(NOTEBOOK)) == sorted(NAMES)


@pytest.mark.parametrize("seed,batch,prompt,new_tokens", [(0, 1, 5, 4), (1, 2, 7, 6), (2, 3, 3, 2), (3, 1, 9, 1)])
def test_timing_loop_matches_the_package_and_generate(nb, tiny, seed, batch, prompt, new_tokens):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, tiny.config.vocab_size, (batch, prompt), generator=g)
    ttft, steps, new = nb["time_prefill_and_decode"](tiny, ids, new_tokens)
    ref = B.time_generation(tiny, ids, new_tokens=new_tokens)
    assert new.tolist() == [list(r) for r in ref.new_ids]
    assert len(steps) == len(ref.step_s) == new_tokens - 1
    assert ttft > 0 and all(s > 0 for s in steps)
    gen = tiny.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    assert new.tolist() == gen[:, prompt:].tolist()


@pytest.mark.parametrize("key", ["smollm2-135m", "gemma-3-270m", "tinyllama-1.1b", "mistral-7b", "phi-2"])
@pytest.mark.parametrize("target", list(P.TARGETS))
@pytest.mark.parametrize("precision,context,batch,runtime", [("bf16", 2048, 1, "eager"), ("Q4_K_M", 512, 4, "eager"),
                                                              ("fp32", 64, 16, "compiled"), ("Q8_0", 4000, 64, "compiled")])
def test_decode_step_formula_matches_the_planner(nb, key, target, precision, context, batch, runtime):
    card, tgt, fw = catalogue.get(key), P.TARGETS[target], P.FRAMEWORKS[runtime]
    context = min(context, card.context_length)  # the calculators refuse a context the model was not built for
    kv = P.default_kv_precision(precision)
    mine = nb["decode_step_seconds"](P.bytes_per_token(card.params, precision), P.kv_bytes_read(card, context, kv),
                                     P.decode_flops_per_token(card, context), batch,
                                     P.DEFAULT_EFFICIENCY * tgt.bandwidth_gb_s * 1e9,
                                     P.DEFAULT_COMPUTE_EFFICIENCY * tgt.peak_tflops * 1e12,
                                     fw.overhead_s(card.layers))
    ref = P.decode_step(card, tgt, precision, context, batch, runtime=runtime)
    assert math.isclose(mine, ref.seconds, rel_tol=1e-12)
