"""Lesson 13's package modules: speculative decoding, KV-cache quantization, prefix caching, constrained
decoding and the ONNX Runtime GenAI runtime."""
import json
import math

import pytest
import torch

from slmcourse import CourseError, scaled_down
from slmcourse import constrained as C
from slmcourse import kvquant as K
from slmcourse import speculative as S
from slmcourse.generation import generate


@pytest.fixture(scope="module")
def tiny():
    return scaled_down("smollm2-135m", seed=0)           # SCALED-DOWN random-weight Llama


# ---- speculative decoding --------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_speculative_and_prompt_lookup_keep_greedy_output(tiny, k):
    draft = scaled_down("smollm2-135m", seed=3, num_hidden_layers=1)
    ids = torch.tensor([[5, 9, 5, 9, 5, 9, 11]])
    plain = list(generate(tiny, ids, 15).new_ids)
    assert S.speculative_greedy(tiny, draft, ids, 15, k).tokens == plain
    assert S.prompt_lookup_greedy(tiny, ids, 15, k).tokens == plain


def test_alpha_counts_each_rounds_examined_proposals(tiny):
    """alpha (Leviathan et al.) = accepted / (accepted + rounds ended by a rejection); acceptance = accepted / drafted."""
    r = S.SpeculativeResult([], rounds=3, drafted=12, accepted=3, rejected=2)
    assert r.alpha == pytest.approx(0.6) and r.acceptance == pytest.approx(0.25)
    ids = torch.tensor([[5, 9, 5, 9, 5, 9, 11]])
    same = S.speculative_greedy(tiny, tiny, ids, 15, 4)           # the target as its own draft agrees always
    assert same.alpha == 1.0 and same.rejected == 0
    other = S.speculative_greedy(tiny, scaled_down("smollm2-135m", seed=3, num_hidden_layers=1), ids, 15, 4)
    assert other.rejected <= other.rounds and other.accepted == sum(other.per_round)
    assert other.alpha >= other.acceptance


def test_lookup_proposals():
    assert S.lookup_proposals([1, 2, 3, 4, 1, 2], 2, ngram=2) == [3, 4]
    assert S.lookup_proposals([7, 8, 9], 3) == []


def test_rejection_sampling_keeps_the_target_distribution():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.1, 0.2, 0.3, 0.4])
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([S.rejection_sample(p, q, g)[0] for _ in range(8000)])
    share = torch.bincount(draws, minlength=4) / len(draws)
    assert (share - p).abs().max() < 0.025


def test_expected_speedup_formula():
    assert S.expected_tokens_per_pass(0.0, 4) == 1.0
    assert S.expected_tokens_per_pass(1.0, 4) == 5.0
    assert math.isclose(S.expected_tokens_per_pass(0.5, 2), 1.75)
    assert math.isclose(S.expected_speedup(0.5, 2, 0.25), 1.75 / 1.5)
    with pytest.raises(CourseError):
        S.expected_speedup(1.5, 2, 0.1)
    with pytest.raises(CourseError):
        S.speculative_greedy(None, None, [1], 4, k=0)


# ---- KV-cache quantization -------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("axis", ["token", "channel"])
def test_kv_quantization_error_is_within_half_a_step(bits, axis):
    x = torch.randn(2, 3, 17, 32, generator=torch.Generator().manual_seed(bits)) * torch.linspace(0.1, 5, 32)
    err = (K.fake_quantize(x, bits, axis) - x).abs()
    assert (err <= K.max_error(x, bits, axis) + 1e-5).all()
    span = x.amax(-1 if axis == "token" else -2, keepdim=True) - x.amin(-1 if axis == "token" else -2, keepdim=True)
    assert (err <= span / (2 ** bits - 1) / 2 + 1e-5).all()


def test_kv_bytes():
    assert K.kv_bytes(30, 3, 64, 1000, 16) == 2 * 30 * 3 * 64 * 1000 * 2
    numbers, groups = 2 * 30 * 3 * 64 * 4096, 2 * 30 * 3 * 4096
    assert K.kv_bytes(30, 3, 64, 4096, 4) == numbers // 2 + groups * 4
    with pytest.raises(CourseError):
        K.kv_bytes(30, 3, 64, 0, 4)
    with pytest.raises(CourseError):
        K.quantize(torch.randn(3, 4), 5)


def test_quantized_cache_runs_and_int8_stays_close(tiny):
    ids = torch.randint(0, tiny.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = tiny(ids).logits
        q8 = K.CacheWrapped(tiny, 8)(ids).logits
        q4 = K.CacheWrapped(tiny, 4, "channel", "token")(ids).logits
    assert (q8 - ref).abs().max() < (q4 - ref).abs().max()
    assert (q8 - ref).abs().max() < 0.05 * ref.abs().max()


def test_prefix_cache_reuse_gives_the_same_logits(tiny):
    ids = torch.randint(0, tiny.config.vocab_size, (1, 20), generator=torch.Generator().manual_seed(1))
    full, _ = K.prefill(tiny, ids)
    _, cache = K.prefill(tiny, ids[:, :14])
    for _ in range(2):                                   # the prefix cache is not consumed by reuse
        part, _ = K.reuse_prefix(tiny, cache, ids[:, 14:])
        assert torch.allclose(part[0, -1], full[0, -1], atol=1e-4)


# ---- constrained decoding --------------------------------------------------------------------------------
SCHEMA = {"name": "string", "age": "integer", "city": "string"}
TOY = list('{}":, ') + list("abcdefghijklmnopqrstuvwxyz0123456789") + ['{"', '": ', '", "', 'name', 'age', 'city', '"}', '"',
                                                          "hello", 'x"}', ""]


@pytest.mark.parametrize("seed", range(25))
def test_constrained_output_is_always_valid_on_random_logits(seed):
    parts = C.json_schema_parts(SCHEMA, max_string=8, max_digits=3)
    g = torch.Generator().manual_seed(seed)
    eos = len(TOY) - 1
    state, text = (0, 0), ""
    for _ in range(200):
        token = C.constrained_choice(torch.randn(len(TOY), generator=g) * 5, parts, state, TOY, eos)
        if token == eos:
            break
        state, text = C.advance(parts, state, TOY[token]), text + TOY[token]
    assert token == eos
    obj = C.parse_object(text, SCHEMA)
    assert obj is not None and list(obj) == list(SCHEMA), text
    assert json.loads(text) == obj


def test_lazy_choice_equals_the_full_mask():
    parts = C.json_schema_parts(SCHEMA, max_string=5)
    g = torch.Generator().manual_seed(0)
    state = (0, 0)
    for _ in range(30):
        logits = torch.randn(len(TOY), generator=g)
        mask = C.allowed_mask(parts, state, TOY, eos_id=len(TOY) - 1)
        token = C.constrained_choice(logits, parts, state, TOY, eos_id=len(TOY) - 1)
        assert token == int(logits.masked_fill(~mask, float("-inf")).argmax())
        if token == len(TOY) - 1:
            break
        state = C.advance(parts, state, TOY[token])


def test_advance_and_parse():
    parts = C.json_schema_parts({"age": "integer"}, max_digits=3)
    assert C.advance(parts, (0, 0), '{"age": 4') is not None
    assert C.advance(parts, (0, 0), '{"age": "') is None
    assert C.advance(parts, (0, 0), '{"age": 1234') is None
    assert C.is_complete(parts, C.advance(parts, (0, 0), '{"age": 42}'))
    assert C.parse_object('sure: {"age": 42} done', {"age": "integer"}) == {"age": 42}
    assert C.parse_object('{"age": "42"}', {"age": "integer"}) is None
    with pytest.raises(CourseError):
        C.json_schema_parts({"age": "float"})


# ---- the runtime -----------------------------------------------------------------------------------------
def test_runtime_fp32_matches_pytorch_greedy():
    from slmcourse import load, runtime

    if not runtime.available():
        pytest.fail("onnxruntime-genai is pinned in requirements.txt but not importable")
    rt = runtime.Runtime(runtime.build("fp32"))
    model, tok = load("smollm2-135m", device="cpu")
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    assert rt.generate(ids, 12).new_ids == list(generate(model, ids, 12).new_ids)


def test_bytes_per_token_reads_weights_whole_and_lookup_tables_one_row(tmp_path):
    """The bandwidth bound's numerator: a multiplied weight counts whole at its stored size, a table that is only
    looked up counts one row per lookup, a table shared by a lookup and a product (tied embeddings) counts once."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from slmcourse import runtime

    f32 = lambda *shape: np.zeros(shape, np.float32)
    inits = [numpy_helper.from_array(f32(4, 4), "w"),               # 64 B, multiplied: whole
             numpy_helper.from_array(f32(10, 4), "embed"),          # 160 B, only gathered: one row = 16 B
             numpy_helper.from_array(np.zeros((10, 2), np.uint8), "codes"),   # 20 B, gathered AND multiplied
             numpy_helper.from_array(f32(8, 2), "cos_cache")]       # 64 B, rotary table: one row = 8 B
    nodes = [helper.make_node("Gather", ["embed", "ids"], ["h"]),
             helper.make_node("MatMul", ["h", "w"], ["h2"]),
             helper.make_node("Gather", ["codes", "ids"], ["c"]),
             helper.make_node("MatMul", ["h2", "codes"], ["logits"]),
             helper.make_node("GroupQueryAttention", ["h2", "", "", "pk", "pv", "sl", "tl", "cos_cache", "cos_cache"],
                              ["a", "k", "v"], domain="com.microsoft")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1]),
                                           helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT16, [1])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])], initializer=inits)
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    assert runtime.bytes_per_token(tmp_path) == 64 + 16 + 20 + 2 * 8
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"decoder": {
        "num_hidden_layers": 3, "num_key_value_heads": 2, "head_size": 8}}}))
    assert runtime.kv_bytes_per_token(tmp_path, 10) == 2 * 3 * 2 * 8 * 2 * 10      # float16 cache: 2 bytes
    with pytest.raises(CourseError):
        runtime.kv_bytes_per_token(tmp_path, -1)


def test_the_shipped_draft_is_lesson_8s_student_checked_by_its_sha256(tmp_path, monkeypatch):
    """Lesson 13 loads the shipped draft instead of training it (minutes) on a fresh clone; a damaged file is refused."""
    import shutil

    from slmcourse import speculative
    from slmcourse.errors import CourseError

    assert speculative.shipped_draft() is not None
    monkeypatch.setattr(speculative, "draft_path", lambda: tmp_path / "no-cache")
    student = speculative.load_draft()
    assert student.config.num_hidden_layers == speculative.DRAFT_CONFIG["num_hidden_layers"]
    broken = tmp_path / "draft"
    shutil.copytree(speculative.SHIPPED_DRAFT, broken)
    data = bytearray((broken / "draft-student.safetensors").read_bytes())
    data[-1] ^= 1
    (broken / "draft-student.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(speculative, "SHIPPED_DRAFT", broken)
    with pytest.raises(CourseError, match="SHA-256"):
        speculative.load_draft()
