"""Lesson 13 writes greedy speculative decoding, the rejection-sampling step, KV-cache quantization and the
constrained greedy loop inline; they must stay equal to slmcourse.speculative, slmcourse.kvquant and
slmcourse.constrained (the validated copies the lesson then uses)."""
import pytest
import torch

from notebook_defs import definition_names, notebook_definitions
from slmcourse import constrained as C
from slmcourse import kvquant as K
from slmcourse import scaled_down
from slmcourse import speculative as S
from slmcourse.generation import generate

NOTEBOOK = "course/13_faster_decoding.ipynb"
CORE = ["speculative_greedy_simple", "speculative_sample", "quantize_kv", "dequantize_kv", "constrained_greedy_simple",
        "bytes_read_per_token"]
HELPERS = ["explore", "extraction_prompt", "decode_rate", "kv_read", "add_row"]      # display/measurement helpers, not mechanisms


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NOTEBOOK, CORE)


@pytest.fixture(scope="module")
def models():
    target = scaled_down("smollm2-135m", seed=0)                       # SCALED-DOWN random-weight Llama
    draft = scaled_down("smollm2-135m", seed=1, num_hidden_layers=1)   # another one: a (poor) draft
    return target, draft


def test_every_inline_definition_is_checked():
    assert sorted(definition_names(NOTEBOOK)) == sorted(CORE + HELPERS)


@pytest.mark.parametrize("seed,prompt,new,k", [(0, 5, 9, 1), (1, 3, 12, 3), (2, 8, 7, 5)])
def test_speculative_greedy_equals_target_greedy_and_package(nb, models, seed, prompt, new, k):
    target, draft = models
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, target.config.vocab_size, (1, prompt), generator=g)
    plain = list(generate(target, ids, new).new_ids)
    ours, passes = nb["speculative_greedy_simple"](target, draft, ids, new, k)
    assert ours == plain == S.speculative_greedy(target, draft, ids, new, k).tokens
    assert 1 <= passes <= new
    # the target as its own draft: every proposal accepted, k + 1 tokens per pass
    full = S.speculative_greedy(target, target, ids, new, k)
    assert full.tokens == plain and full.acceptance == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rejection_step_matches_package(nb, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(7, generator=g) * 2, 0)
    q = torch.softmax(torch.randn(7, generator=g) * 2, 0)
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    assert all(nb["speculative_sample"](p, q, g1) == S.rejection_sample(p, q, g2) for _ in range(100))


@pytest.mark.parametrize("shape,bits,axis", [((2, 3, 10, 8), 8, "token"), ((1, 2, 7, 16), 4, "channel"),
                                             ((4, 5, 6), 4, "token"), ((2, 9, 4), 8, "channel")])
def test_kv_quantizer_matches_package(nb, shape, bits, axis):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(bits)) * 3
    q, scale, lo = nb["quantize_kv"](x, bits, axis)
    pq, pscale, plo = K.quantize(x, bits, axis)
    assert torch.equal(q, pq) and torch.allclose(scale, pscale) and torch.allclose(lo, plo)
    assert torch.allclose(nb["dequantize_kv"](q, scale, lo), K.fake_quantize(x, bits, axis))


@pytest.mark.parametrize("seed", [0, 1])
def test_constrained_loop_matches_package(nb, seed):
    target = scaled_down("smollm2-135m", seed=seed, vocab_size=40)       # SCALED-DOWN, 40-token toy vocabulary
    texts = list('{}":, ') + list("abcdefghij0123456789") + ['{"', '": ', '", "', 'name', 'age', 'city', '"}',
                                                                   "x", "y", "z", "k", "m", ""]
    eos = len(texts) - 1
    parts = C.json_schema_parts({"name": "string", "age": "integer"}, max_string=6, max_digits=2)
    ids = torch.tensor([[1, 2, 3]])
    ours = nb["constrained_greedy_simple"](target, ids, parts, texts, eos, 40)
    assert ours == C.constrained_generate(target, ids, parts, texts, eos, 40)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bytes_read_per_token_equals_the_package(nb, tmp_path, seed):
    """Random graphs: weights multiplied, tables only gathered, tables gathered AND multiplied, rotary tables."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from slmcourse import runtime

    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    for i in range(6):
        rows, cols = int(rng.integers(2, 9)), int(rng.integers(1, 5))
        dtype = [np.float32, np.uint8, np.float16][int(rng.integers(3))]
        inits.append(numpy_helper.from_array(np.zeros((rows, cols), dtype), f"t{i}"))
        role = int(rng.integers(4))
        if role in (0, 2):
            nodes.append(helper.make_node("MatMul", ["x", f"t{i}"], [f"m{i}"]))
        if role in (1, 2):
            nodes.append(helper.make_node("Gather", [f"t{i}", "ids"], [f"g{i}"]))
        if role == 3:
            nodes.append(helper.make_node("GroupQueryAttention", ["x", "", "", "k", "v", "s", "t", f"t{i}", f"t{i}"],
                                          [f"a{i}"], domain="com.microsoft"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], initializer=inits)
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    assert nb["bytes_read_per_token"](tmp_path) == runtime.bytes_per_token(tmp_path)
