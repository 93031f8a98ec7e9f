"""Lesson 9's quantization explorer: bits, group size, scheme -> error on a real weight matrix + model size.

The logic is `explore_quantization` (a plain function: numbers and a figure); the widget only wires
controls to it. Input that makes no sense (a group size that does not divide the rows) gets a message.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from ..errors import CourseError
from ..quant import SCHEMES, model_size_bytes, quantized_size_bytes, round_trip_error
from ._common import explorer, refuses_bad_arguments, style_wide, tooltip

GROUP_CHOICES = [("whole matrix (1 scale)", None), ("per row", "row"), ("16", 16), ("32", 32), ("64", 64),
                 ("128", 128), ("192", 192), ("256", 256)]
MB = 1e6


def layer_matrices(model: nn.Module, layer: int = 0) -> dict[str, torch.Tensor]:
    """The Linear weight matrices of one transformer block, by short name ("self_attn.q_proj", ...)."""
    marker = f"layers.{layer}."
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and marker in name:
            found[name.split(marker, 1)[1]] = module.weight
    if not found:
        raise CourseError(f"no Linear layers found in block {layer} of this model")
    return found


def explore_quantization(weight: torch.Tensor, bits: int = 4, scheme: str = "absmax", group_size=32,
                         model: nn.Module | None = None) -> dict:
    """Round-trip one weight matrix and (optionally) size the whole model at the same setting."""
    err = round_trip_error(weight, bits=bits, scheme=scheme, group_size=group_size)
    result = {"bits": bits, "scheme": scheme, "group_size": group_size, "shape": tuple(weight.shape),
              "error": err, "matrix_fp32_bytes": weight.numel() * 4, "matrix_bytes": err.storage_bytes}
    if model is not None:
        result["model_fp32_bytes"] = model_size_bytes(model)
        result["model_bytes"] = quantized_size_bytes(model, bits, scheme, group_size)
    return result


def plot_quantization(result: dict, weight: torch.Tensor, sample: int = 4000, seed: int = 0):
    """Left: histogram of the round-trip errors. Right: de-quantized vs original weights (the staircase)."""
    err = result["error"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    errors = err.errors.numpy()
    ax1.hist(errors, bins=120, color="#4c72b0")
    ax1.set_yscale("log")
    ax1.set_xlabel("de-quantized minus original weight")
    ax1.set_ylabel("weights (log scale)")
    ax1.set_title(f"round-trip error, RMSE {err.rmse:.2e}")
    flat = weight.detach().float().flatten()
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randperm(flat.numel(), generator=generator)[:sample]
    original = flat[idx].numpy()
    ax2.scatter(original, original + errors[idx.numpy()], s=2, color="#dd8452")
    lims = [original.min(), original.max()]
    ax2.plot(lims, lims, color="black", linewidth=0.8)
    ax2.set_xlabel("original weight")
    ax2.set_ylabel("de-quantized weight")
    group = {None: "whole matrix", "row": "per row"}.get(result["group_size"], f"groups of {result['group_size']}")
    ax2.set_title(f"{result['bits']}-bit {result['scheme']}, {group}")
    fig.tight_layout()
    return fig


def describe(result: dict) -> str:
    err = result["error"]
    text = (f"<b>{result['bits']}-bit {result['scheme']}</b> on a {result['shape'][0]}×{result['shape'][1]} matrix: "
            f"{err.bits_per_weight:.3f} bits per weight (scales included), "
            f"{result['matrix_bytes']:,} bytes instead of {result['matrix_fp32_bytes']:,} in float32. "
            f"Error: RMSE {err.rmse:.2e} ({100 * err.relative_rmse:.2f} % of the weights' RMS), "
            f"max {err.max_abs:.2e}, SQNR {err.sqnr_db:.1f} dB.")
    if "model_bytes" in result:
        text += (f"<br>Whole model with every Linear layer (LM head excepted) at this setting: "
                 f"<b>{result['model_bytes'] / MB:.1f} MB</b> instead of {result['model_fp32_bytes'] / MB:.1f} MB "
                 f"({result['model_fp32_bytes'] / result['model_bytes']:.2f}× smaller).")
    return f'<div style="font-size:14px">{text}</div>'


@refuses_bad_arguments
def quantization_explorer(model: nn.Module, layer: int = 0, matrix: str = "mlp.up_proj", bits: int = 4,
                          scheme: str = "absmax", group_size=32) -> widgets.VBox:
    """Build the explorer on one block of `model`. The VBox has `.controls`, `.result` (HTML), `.figure`."""
    from .. import checks

    model = checks.module("model", model)
    checks.whole_number("bits", bits, minimum=2, maximum=8)
    scheme = checks.one_of("scheme", scheme, list(SCHEMES))
    checks.one_of("group_size", group_size, [v for _, v in GROUP_CHOICES])
    matrices = layer_matrices(model, layer)
    if matrix not in matrices:
        raise CourseError(f"no matrix {matrix!r} in block {layer}; choose one of {', '.join(matrices)}")
    controls = {
        "matrix": widgets.Dropdown(options=list(matrices), value=matrix, description=f"Matrix (block {layer})",
                                   style=style_wide()),
        "bits": widgets.IntSlider(value=bits, min=2, max=8, description="Bits", continuous_update=False,
                                  style=style_wide()),
        "scheme": widgets.ToggleButtons(options=list(SCHEMES), value=scheme, description="Scheme",
                                        style=style_wide()),
        "group_size": widgets.Dropdown(options=GROUP_CHOICES, value=group_size, description="Group size",
                                       style=style_wide()),
    }
    tooltip(controls["group_size"], "Weights sharing one scale: smaller groups = less error, more scales to store")
    tooltip(controls["scheme"], "absmax: symmetric around 0; zeropoint: the range [min, max] with an integer offset")
    def render(matrix, bits, scheme, group_size):
        outcome = explore_quantization(matrices[matrix], bits, scheme, group_size, model)
        return describe(outcome), plot_quantization(outcome, matrices[matrix])

    return explorer(controls, render, width="760px")
