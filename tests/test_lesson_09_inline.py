"""Lesson 9 builds its quantizers, the Wanda score and MLP channel surgery inline; they must stay equal to
slmcourse.quant (the validated copy the lesson, the explorer and the compression assignment use)."""
import copy

import pytest
import torch
from torch import nn

from notebook_defs import notebook_definitions
from slmcourse import quant as Q

NOTEBOOK = "course/09_compression.ipynb"
NAMES = ["absmax_quantize", "absmax_dequantize", "zeropoint_quantize", "zeropoint_dequantize",
         "input_norms", "wanda_score", "wanda_prune", "channel_scores", "keep_channels", "cut_channels"]


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions(NOTEBOOK, NAMES)


def _matrix(seed, shape, outlier=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 0.02
    if outlier:
        x.view(-1)[seed % x.numel()] = 0.5
    return x


@pytest.mark.parametrize("seed,shape", [(0, (8, 64)), (1, (3, 96)), (2, (16, 32)), (3, (1, 192))])
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("group", [None, "row", 32])
def test_quantizers_match_the_package(nb, seed, shape, bits, group):
    x = _matrix(seed, shape)
    size = shape[-1] if group == "row" else group
    codes, scale = nb["absmax_quantize"](x, bits, size)
    qt = Q.quantize(x, bits=bits, scheme="absmax", group_size=group)
    assert torch.equal(codes, qt.codes.float()) and torch.equal(scale, qt.scale)
    assert torch.equal(nb["absmax_dequantize"](codes, scale, x.shape), Q.dequantize(qt))

    codes, scale, zero = nb["zeropoint_quantize"](x, bits, size)
    qt = Q.quantize(x, bits=bits, scheme="zeropoint", group_size=group)
    assert torch.equal(codes, qt.codes.float()) and torch.equal(scale, qt.scale)
    assert torch.equal(zero, qt.zero.float())
    assert torch.equal(nb["zeropoint_dequantize"](codes, scale, zero, x.shape), Q.dequantize(qt))


def test_quantizers_keep_an_all_zero_group_exact(nb):
    x = torch.zeros(2, 32)
    x[1] = torch.linspace(-1, 1, 32)
    codes, scale = nb["absmax_quantize"](x, 4, 32)
    assert torch.equal(nb["absmax_dequantize"](codes, scale, x.shape)[0], torch.zeros(32))
    assert torch.equal(nb["absmax_dequantize"](codes, scale, x.shape), Q.round_trip(x, bits=4, group_size=32))


@pytest.mark.parametrize("seed,shape,amount", [(0, (16, 64), 0.5), (1, (8, 96), 0.3), (2, (32, 32), 0.1)])
def test_wanda_matches_the_package(nb, seed, shape, amount):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    x = torch.randn(5, 7, shape[1], generator=g) * torch.rand(shape[1], generator=g) * 3
    norm = nb["input_norms"](x)
    assert torch.allclose(norm, x.reshape(-1, shape[1]).norm(dim=0))
    assert torch.equal(nb["wanda_score"](w, norm), Q.wanda_score(w, norm))
    pruned = nb["wanda_prune"](w, norm, amount)
    assert torch.equal(pruned != 0, Q.wanda_mask(w, norm, amount))
    linear = nn.Linear(shape[1], shape[0], bias=False)
    with torch.no_grad():
        linear.weight.copy_(w)
    Q.magnitude_prune(nn.Sequential(linear), amount, skip=(), input_norms={"0": norm})
    assert torch.equal(pruned, linear.weight.detach())


class GatedMLP(nn.Module):
    def __init__(self, d, h, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


@pytest.mark.parametrize("d,h,seed,amount", [(16, 32, 0, 0.25), (24, 48, 1, 0.1), (8, 64, 2, 0.5)])
@pytest.mark.parametrize("with_activation", [False, True])
def test_channel_surgery_matches_the_package(nb, d, h, seed, amount, with_activation):
    mlp = GatedMLP(d, h, seed)
    activation = torch.rand(h) * 5 if with_activation else None
    with torch.no_grad():
        ours = nb["channel_scores"](mlp, activation)
        assert torch.allclose(ours, Q.mlp_channel_scores(mlp, activation))
        keep = nb["keep_channels"](ours, amount)
        assert torch.equal(keep, Q.channels_to_keep(Q.mlp_channel_scores(mlp, activation), amount))
        x = torch.randn(3, d)
        mask = torch.zeros(h)
        mask[keep] = 1.0
        reference = mlp.down_proj(nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x) * mask)
        cut_inline = nb["cut_channels"](copy.deepcopy(mlp), keep)
        cut_package = Q.cut_mlp_channels(copy.deepcopy(mlp), keep)
        for name in ("gate_proj", "up_proj", "down_proj"):
            assert torch.equal(getattr(cut_inline, name).weight, getattr(cut_package, name).weight)
        assert torch.allclose(cut_inline(x), reference, atol=1e-6)
        assert torch.allclose(cut_package(x), reference, atol=1e-6)
