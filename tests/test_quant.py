"""slmcourse.quant: exact codes on small tensors, error bounds, sizes, pruning, and the real SmolLM2."""
import math

import pytest
import torch
from torch import nn

from slmcourse import CourseError
from slmcourse import quant as Q


def test_absmax_int8_exact_codes():
    x = torch.tensor([[-1.0, -0.5, 0.0, 0.25, 1.0, 0.75]])
    qt = Q.quantize_absmax(x, bits=8, scale_dtype=torch.float32)
    assert qt.scale.item() == pytest.approx(1 / 127)
    # round half to even: 0.25 * 127 = 31.75 -> 32, 0.5 * 127 = 63.5 -> 64, 0.75 * 127 = 95.25 -> 95
    assert qt.codes.flatten().tolist() == [-127, -64, 0, 32, 127, 95]
    assert torch.allclose(Q.dequantize(qt), torch.tensor([[-127, -64, 0, 32, 127, 95]]) / 127)


def test_zeropoint_int8_exact_codes():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0, 4.0])  # range 5 over 255 steps: scale 1/51, zero = 51
    qt = Q.quantize_zeropoint(x, bits=8, scale_dtype=torch.float32)
    assert qt.scale.item() == pytest.approx(5 / 255)
    assert qt.zero.item() == 51
    assert qt.codes.flatten().tolist() == [0, 51, 102, 153, 255]
    assert torch.allclose(Q.dequantize(qt), x, atol=1e-6)
    # zero is exactly representable, even when every value is positive
    pos = torch.tensor([0.3, 0.7, 1.1, 0.0])
    assert Q.round_trip(pos, bits=8, scheme="zeropoint")[3].item() == 0.0


def test_int4_groupwise_codes_and_layout():
    x = torch.arange(16, dtype=torch.float32).reshape(2, 8) - 4  # rows [-4..3] and [4..11]
    qt = Q.quantize_groupwise(x, bits=4, group_size=4, scheme="absmax", scale_dtype=torch.float32)
    assert qt.codes.shape == (4, 4) and qt.scale.shape == (4, 1)
    assert qt.scale.flatten().tolist() == pytest.approx([4 / 7, 3 / 7, 7 / 7, 11 / 7])
    assert qt.codes[2].tolist() == [4, 5, 6, 7]       # group [4, 5, 6, 7]: scale exactly 1
    assert qt.codes[0].tolist()[:2] == [-7, -5]       # -4, -3 in steps of 4/7: -7, -5.25 -> -5
    assert qt.codes.abs().max() <= 7


@pytest.mark.parametrize("scheme", Q.SCHEMES)
@pytest.mark.parametrize("bits,group", [(8, None), (8, 64), (4, 32), (4, 128), (3, 16)])
def test_round_trip_error_is_at_most_half_a_step(scheme, bits, group):
    torch.manual_seed(0)
    x = torch.randn(64, 256) * 0.05
    qt = Q.quantize(x, bits=bits, scheme=scheme, group_size=group)
    err = (Q.dequantize(qt) - x).abs().reshape(qt.n_groups, -1)
    # absmax: at most half a step (plus a little for the float16 rounding of the scale); zero-point:
    # the rounded zero point can push an extreme value one code past the end of the range, so one step
    steps = 0.5 if scheme == "absmax" else 1.0
    assert (err <= qt.scale * steps * (1 + 1e-3) + 1e-7).all()
    assert err.mean() <= qt.scale.mean() * 0.3                  # typical error ~ step / 4
    report = Q.round_trip_error(x, bits=bits, scheme=scheme, group_size=group)
    assert report.max_abs == pytest.approx(err.max().item())
    assert report.errors.shape == (x.numel(),)


def test_more_bits_and_smaller_groups_mean_less_error():
    torch.manual_seed(1)
    x = torch.randn(128, 512) * torch.linspace(0.01, 1, 512)  # columns on different scales
    rmse = {b: Q.round_trip_error(x, bits=b, group_size=64).rmse for b in (2, 4, 6, 8)}
    assert rmse[2] > rmse[4] > rmse[6] > rmse[8]
    by_group = [Q.round_trip_error(x, bits=4, group_size=g).rmse for g in (512, 128, 32)]
    assert by_group[0] > by_group[1] > by_group[2]
    assert Q.round_trip_error(x, bits=8).sqnr_db > 30


def test_storage_bytes_formulas():
    assert Q.storage_bytes(1024, 8) == 1024 + 2                      # one fp16 scale
    assert Q.storage_bytes(1024, 4, "absmax", 32) == 512 + 32 * 2    # 4.5 bits per weight
    assert Q.storage_bytes(1024, 4, "zeropoint", 32) == 512 + 64 + 16
    assert Q.storage_bytes(1024, 4, "absmax", 32, torch.float32) == 512 + 32 * 4
    qt = Q.quantize(torch.randn(4, 64), bits=4, group_size=32)
    assert qt.bits_per_weight == pytest.approx(4.5)


def test_input_validation():
    x = torch.randn(4, 576)
    with pytest.raises(CourseError, match="does not divide the row length 576"):
        Q.quantize(x, bits=4, group_size=128)
    with pytest.raises(CourseError, match="bits must be"):
        Q.quantize(x, bits=1)
    with pytest.raises(CourseError, match="bits must be"):
        Q.quantize(x, bits=16)
    with pytest.raises(CourseError, match="unknown quantization scheme"):
        Q.quantize(x, scheme="nf4")
    with pytest.raises(CourseError, match="positive whole number"):
        Q.quantize(x, group_size=0)
    with pytest.raises(CourseError, match="floating-point"):
        Q.quantize(torch.arange(4))
    with pytest.raises(CourseError, match="inf or NaN"):
        Q.quantize(torch.tensor([1.0, float("nan")]))
    with pytest.raises(CourseError, match="group-wise quantization needs a group size|group_size must be a whole number, got None"):
        Q.quantize_groupwise(x, group_size=None)
    assert Q.quantize(x, group_size="row").n_groups == 4


def test_all_zero_group_is_kept_exact():
    x = torch.zeros(2, 8)
    x[1] = torch.linspace(-1, 1, 8)
    out = Q.round_trip(x, bits=4, group_size=8)
    assert torch.equal(out[0], torch.zeros(8))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 64)
        self.up = nn.Linear(64, 96, bias=False)
        self.down = nn.Linear(96, 64)
        self.lm_head = nn.Linear(64, 10, bias=False)
        self.lm_head.weight = self.embed.weight  # tied, as in SmolLM2


def test_model_size_counts_tied_weights_once():
    m = Tiny()
    assert Q.model_size_bytes(m) == 4 * (10 * 64 + 64 * 96 + 96 * 64 + 64)


def test_quantize_model_in_place_and_size():
    m = Tiny()
    before = m.up.weight.clone()
    head = m.lm_head.weight.clone()
    report = Q.quantize_model(m, bits=4, scheme="absmax", group_size=32)
    assert [l["name"] for l in report.layers] == ["up", "down"]
    assert torch.equal(m.lm_head.weight, head)                 # skipped by default
    assert torch.equal(m.up.weight, Q.round_trip(before, bits=4, group_size=32))
    expected = report.original_bytes - 4 * 2 * 64 * 96 + 2 * Q.storage_bytes(64 * 96, 4, "absmax", 32)
    assert report.size_bytes == expected
    assert report.bits_per_quantized_weight == pytest.approx(4.5)
    assert Q.quantized_size_bytes(Tiny(), 4, "absmax", 32) == expected
    with pytest.raises(CourseError, match="fit every layer"):
        Q.quantize_model(Tiny(), bits=4, group_size=64)           # 96 is not a multiple of 64


def test_magnitude_prune_unstructured():
    m = Tiny()
    w = m.up.weight.detach().clone()
    report = Q.magnitude_prune(m, 0.5)
    assert report.sparsity == pytest.approx(0.5)
    kept = m.up.weight != 0
    assert int(kept.sum()) == w.numel() // 2
    assert w[kept].abs().min() >= w[~kept].abs().max()          # the smallest magnitudes went
    assert report.dense_bytes == report.original_bytes
    assert report.sparse_bytes < report.dense_bytes
    with pytest.raises(CourseError, match="fraction"):
        Q.magnitude_prune(m, 1.5)


class GatedMLP(nn.Module):
    def __init__(self, d=16, h=32):
        super().__init__()
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


def test_structured_pruning_removes_channels_exactly():
    torch.manual_seed(0)
    mlp = GatedMLP()
    with torch.no_grad():
        mlp.down_proj.weight[:, :8] *= 1e-4                      # 8 nearly silent channels
    x = torch.randn(5, 16)
    ref = mlp(x)
    wrapper = nn.Sequential(mlp)
    report = Q.prune_mlp_channels(wrapper, 0.25)
    assert mlp.up_proj.out_features == 24 and mlp.down_proj.in_features == 24
    assert report.pruned == 3 * 8 * 16
    assert torch.allclose(mlp(x), ref, atol=1e-3)               # the silent channels were the ones cut
    with pytest.raises(CourseError, match="gated MLPs"):
        Q.prune_mlp_channels(Tiny(), 0.25)


def test_wanda_prunes_per_row_and_spares_busy_inputs():
    m = Tiny()
    norms = {"up": torch.ones(64), "down": torch.ones(96)}
    norms["up"][7] = 1e6                                        # input feature 7 is always huge
    report = Q.magnitude_prune(m, 0.25, input_norms=norms)
    assert ((m.up.weight == 0).sum(dim=1) == 16).all()         # exactly 25 % of every row
    assert (m.up.weight[:, 7] != 0).all()                      # weights that meet the huge input stay
    assert report.sparsity == pytest.approx(0.25)
    with pytest.raises(CourseError, match="no entry for down"):
        Q.magnitude_prune(Tiny(), 0.25, input_norms={"up": torch.ones(64)})


def test_structured_pruning_with_activity():
    torch.manual_seed(0)
    mlp = GatedMLP()
    activity = torch.ones(32)
    activity[[3, 5, 30, 31]] = 0.0                              # four channels never fire
    Q.prune_mlp_channels(nn.Sequential(mlp), 4 / 32, input_norms={"0.down_proj": activity})
    assert mlp.down_proj.in_features == 28
    torch.manual_seed(0)
    ref = GatedMLP()
    keep = [j for j in range(32) if j not in (3, 5, 30, 31)]
    assert torch.equal(mlp.up_proj.weight, ref.up_proj.weight[keep])
    assert torch.equal(mlp.down_proj.weight, ref.down_proj.weight[:, keep])


# ---- the real SmolLM2 (loaded once) ----------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    from slmcourse import load
    return load("smollm2-135m")


def test_real_model_sizes_and_perplexity(smollm2):
    model, tok = smollm2
    assert Q.model_size_bytes(model) == 4 * 134_515_008
    text = "The old bakery on the corner opens at six in the morning, before the rest of the street wakes up."
    ppl = Q.perplexity(model, tok, text)                       # the one protocol (slmcourse.perplexity)
    ids = tok(text, return_tensors="pt").input_ids
    from slmcourse.perplexity import CONTEXT
    assert ids.shape[1] < CONTEXT                                # one window: the protocol is the plain loss
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()      # transformers' own mean NLL
    assert ppl == pytest.approx(math.exp(loss), rel=1e-4)
    with pytest.raises(CourseError, match="non-empty"):
        Q.perplexity(model, tok, [])
    int4 = Q.quantized_size_bytes(model, 4, "zeropoint", 32)
    assert int4 < Q.model_size_bytes(model) / 3
    with pytest.raises(CourseError, match="group sizes that fit every layer"):
        Q.quantized_size_bytes(model, 4, "absmax", 128)          # 576 is not a multiple of 128


def test_calibration_norms_match_a_direct_computation(smollm2):
    model, tok = smollm2
    text = "Rivers shape the land around them over thousands of years."
    norms = Q.calibrate_input_norms(model, tok, text)
    assert len(norms) == 7 * 30 and "lm_head" not in norms
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        x = model.model.layers[0].input_layernorm(model.model.embed_tokens(ids))[0]
    assert torch.allclose(norms["model.layers.0.self_attn.q_proj"], x.norm(dim=0), rtol=1e-5)
    assert norms["model.layers.0.mlp.down_proj"].shape == (1536,)


# ---- the building blocks the lesson checks its inline versions against ------------------------
def test_perplexity_is_the_one_protocol():
    from slmcourse import perplexity as P
    assert Q.perplexity is P.perplexity


def test_wanda_score_and_mask():
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.1, 0.2, -0.3, 0.4]])
    norm = torch.tensor([1.0, 0.1, 10.0, 1.0])
    assert torch.allclose(Q.wanda_score(w, norm), torch.tensor([[1.0, 0.2, 5.0, 3.0], [0.1, 0.02, 3.0, 0.4]]))
    mask = Q.wanda_mask(w, norm, 0.5)
    assert mask.tolist() == [[False, False, True, True], [False, False, True, True]]
    with pytest.raises(CourseError, match="one norm per input feature"):
        Q.wanda_score(w, torch.ones(3))
    with pytest.raises(CourseError, match="2-D floating-point"):
        Q.wanda_score(torch.ones(4), torch.ones(4))
    with pytest.raises(CourseError, match="fraction"):
        Q.wanda_mask(w, norm, 1.0)


def test_channel_surgery_building_blocks():
    torch.manual_seed(0)
    mlp = GatedMLP()
    scores = Q.mlp_channel_scores(mlp)
    expected = (mlp.gate_proj.weight.norm(dim=1) * mlp.up_proj.weight.norm(dim=1) * mlp.down_proj.weight.norm(dim=0))
    assert torch.allclose(scores, expected)
    activity = torch.arange(32, dtype=torch.float32)
    assert torch.allclose(Q.mlp_channel_scores(mlp, activity), activity * mlp.down_proj.weight.norm(dim=0))
    keep = Q.channels_to_keep(torch.arange(32, dtype=torch.float32), 0.25)
    assert keep.tolist() == list(range(8, 32))
    x = torch.randn(4, 16)
    with torch.no_grad():
        h = torch.nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x)
        h[:, :8] = 0
        reference = mlp.down_proj(h)
        Q.cut_mlp_channels(mlp, keep)
        assert mlp.up_proj.weight.shape == (24, 16) and mlp.down_proj.weight.shape == (16, 24)
        assert torch.allclose(mlp(x), reference, atol=1e-6)
    with pytest.raises(CourseError, match="distinct channel indices"):
        Q.cut_mlp_channels(GatedMLP(), [0, 0, 1])
    with pytest.raises(CourseError, match="distinct channel indices"):
        Q.cut_mlp_channels(GatedMLP(), [40])
    with pytest.raises(CourseError, match="gated MLP"):
        Q.mlp_channel_scores(nn.Linear(4, 4))
    with pytest.raises(CourseError, match="one norm per hidden channel"):
        Q.mlp_channel_scores(GatedMLP(), torch.ones(5))
    with pytest.raises(CourseError, match="every channel"):
        Q.channels_to_keep(torch.ones(3), 0.9)
