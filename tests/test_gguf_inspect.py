"""slmcourse.gguf_inspect on the bundled GGUF files: types, bits per weight, a Q4_1 block by hand."""
import numpy as np
import pytest

from slmcourse import CourseError
from slmcourse import gguf_inspect as G


@pytest.fixture(scope="module")
def smol():
    return G.open_gguf(G.bundled_gguf("smollm2-135m"))


@pytest.fixture(scope="module")
def gemma():
    return G.bundled_gguf("gemma-3-270m")     # a path: the tables read only its header (GGUFReader takes ~10 s)


def test_bits_per_weight_of_the_types():
    assert G.bits_per_weight("F32") == 32
    assert G.bits_per_weight("Q8_0") == 8.5        # 32 int8 + one fp16 scale per 32
    assert G.bits_per_weight("Q4_1") == 5.0        # 32 x 4 bits + fp16 scale + fp16 minimum
    assert G.bits_per_weight("Q4_K") == 4.5
    assert G.bits_per_weight("Q6_K") == 6.5625
    with pytest.raises(CourseError, match="unknown ggml type"):
        G.bits_per_weight("Q3_XL")


def test_block_layouts_add_up_to_the_block_sizes():
    for name, fields in G.BLOCK_LAYOUTS.items():
        assert sum(nbytes for _, nbytes, _ in fields) == G.block_size(name)[1], name


def test_smollm2_file_types(smol):
    summary = {s["type"]: s for s in G.type_summary(smol)}
    assert set(summary) == {"Q4_1", "Q8_0", "F32"}
    assert summary["Q4_1"]["tensors"] == 7 * 30                     # every linear layer of 30 blocks
    assert summary["Q8_0"]["weights"] == 49152 * 576                 # the (tied) token embedding
    assert summary["Q4_1"]["bits_per_weight"] == 5.0
    assert sum(s["weights"] for s in summary.values()) == 134_515_008
    roles = G.types_by_role(smol)
    assert roles["token_embd"] == {"Q8_0": 1} and roles["ffn_down"] == {"Q4_1": 30}
    assert roles["attn_norm"] == {"F32": 30}
    table = {r["name"]: r for r in G.tensor_table(smol)}
    assert table["blk.0.ffn_down.weight"]["shape"] == (576, 1536)   # PyTorch order (out, in)
    assert 5.7 < G.file_bits_per_weight(smol) < 5.8


def test_gemma_k_quants_need_rows_of_256(gemma):
    rows = G.tensor_table(gemma)
    types = {r["type"] for r in rows}
    assert {"Q4_K", "Q6_K", "Q5_0", "Q8_0", "F32"} <= types
    for r in rows:
        if r["type"] in ("Q4_K", "Q6_K"):
            assert r["shape"][-1] % 256 == 0, r["name"]
    # rows of 640 weights cannot hold 256-weight super-blocks: those tensors fall back to Q5_0 / Q8_0
    assert all(r["type"] in ("Q5_0", "Q8_0", "F32") for r in rows if r["shape"][-1] == 640)
    assert sum(r["weights"] for r in rows) == 268_098_176


def test_header_table_equals_gguf_reader(smol, tmp_path):
    path = G.bundled_gguf("smollm2-135m")
    assert G.tensor_table(path) == G.tensor_table(smol)         # header only == GGUFReader
    assert G.type_summary(path) == G.type_summary(smol)
    assert [name for name, _, _ in G.header_tensors(path)] == [t.name for t in smol.tensors]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(40))
    with pytest.raises(CourseError, match="not a GGUF file"):
        G.tensor_table(bad)
    with pytest.raises(CourseError, match="no such file"):
        G.header_tensors(tmp_path / "missing.gguf")


def test_q4_1_block_by_hand_equals_gguf(smol):
    name = "blk.0.ffn_down.weight"
    for block in (0, 5, 12345):
        raw = G.raw_block(smol, name, block)
        assert raw.dtype == np.uint8 and raw.size == 20
        by_hand = G.dequantize_q4_1_block(raw)
        assert np.array_equal(by_hand, G.library_dequantize_block(raw, "Q4_1"))
        fields = G.decode_q4_1_block(raw)
        assert fields["codes"].min() >= 0 and fields["codes"].max() <= 15
        assert by_hand.min() == pytest.approx(fields["m"])
        # and re-quantizing the de-quantized values gives back the very same bytes (by hand and by gguf)
        assert np.array_equal(G.quantize_q4_1_block(by_hand), raw)
        assert np.array_equal(G.library_quantize_block(by_hand, "Q4_1"), raw)
    full = G.dequantize_tensor(smol, name)
    row, col = G.block_position(smol, name, 5)
    assert (row, col) == (0, 160)
    assert np.array_equal(full[row, col:col + 32], G.dequantize_q4_1_block(G.raw_block(smol, name, 5)))


def test_the_model_weights_are_the_gguf_values(smol):
    from slmcourse import load

    model, _ = load("smollm2-135m")
    w = model.model.layers[0].mlp.down_proj.weight.detach().numpy()
    assert np.array_equal(w, G.dequantize_tensor(smol, "blk.0.ffn_down.weight"))


def test_requantizing_the_model_weights_gives_the_file_bytes(smol):
    values = G.dequantize_tensor(smol, "blk.3.attn_output.weight")
    assert np.array_equal(G.quantize_tensor(values, "Q4_1"), G.tensor_bytes(smol, "blk.3.attn_output.weight"))
    with pytest.raises(CourseError, match="multiple of 32"):
        G.quantize_tensor(np.zeros((2, 48)), "Q4_1")


def test_q4_1_by_hand_on_random_values():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(size=32).astype(np.float32)
        assert np.array_equal(G.quantize_q4_1_block(x), G.library_quantize_block(x, "Q4_1"))
        err = np.abs(G.dequantize_q4_1_block(G.quantize_q4_1_block(x)) - x)
        assert err.max() <= (x.max() - x.min()) / 15 * 0.51 + 1e-3


def test_errors_are_clear(smol):
    with pytest.raises(CourseError, match="no tensor named"):
        G.raw_block(smol, "blk.99.nothing.weight")
    with pytest.raises(CourseError, match="has blocks 0 to"):
        G.raw_block(smol, "blk.0.ffn_down.weight", 10**9)
    with pytest.raises(CourseError, match="20 bytes"):
        G.dequantize_q4_1_block(np.zeros(18, dtype=np.uint8))
    with pytest.raises(CourseError, match="32 values"):
        G.quantize_q4_1_block(np.zeros(31))
    with pytest.raises(CourseError, match="does not ship as a GGUF"):
        G.bundled_gguf("all-minilm-l6-v2")
    with pytest.raises(CourseError, match="no such file"):
        G.open_gguf("/nonexistent/file.gguf")
