"""Lesson 3's decoding explorer: prompt + strategy + temperature/top-k/top-p -> text and the filtered distribution.

The logic lives in `slmcourse.generation` (unit-tested); this module only wires controls to it.
Changing a filter redraws the next-token distribution at once (the model's logits for the prompt are
computed once and kept); generating runs only when the button is pressed, with a progress bar.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from ..errors import CourseError
from ..generation import check_settings, filter_stages, generate_text, next_token_logits, survivors
from ._common import error_html, image_widget, refuses_bad_arguments, show_figure, style_wide, tooltip

STAGE_COLOURS = {"model": "#9e9e9e", "repetition penalty": "#8172b3", "temperature": "#dd8452",
                 "top-k": "#4c72b0", "top-p": "#55a868"}


def prompt_ids(tokenizer, prompt: str, chat: bool) -> list[int]:
    """The token ids the model reads: the prompt alone, or wrapped in the tokenizer's chat template."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise CourseError("type a prompt first")
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise CourseError("this model's tokenizer has no chat template: untick 'chat template'")
        return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                  tokenize=True, return_dict=True)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])


def plot_stages(stages, tokenizer, n: int = 12, ax=None):
    """Grouped bars: the probability of the model's n most likely next tokens after each filter."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2))
    shown = [name for name in stages if name == "model" or not np.allclose(stages[name].numpy(),
                                                                          stages[_previous(stages, name)].numpy())]
    order = stages["model"].argsort(descending=True)[:n].tolist()
    width = 0.8 / len(shown)
    x = np.arange(len(order))
    for i, name in enumerate(shown):
        probs = stages[name][order].numpy()
        label = f"{name} ({survivors(stages[name]):,} tokens left)" if name != "model" else "model (all tokens)"
        ax.bar(x + (i - (len(shown) - 1) / 2) * width, probs, width, color=STAGE_COLOURS[name], label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([repr(tokenizer.decode([t]))[1:-1] or "∅" for t in order], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_title("next-token distribution before and after each filter (filters that change nothing are hidden)",
                 fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def _previous(stages, name):
    names = list(stages)
    return names[names.index(name) - 1]


@refuses_bad_arguments
def decoding_explorer(model, tokenizer, prompt: str = "Once upon a time, in a small village,", strategy: str = "sample",
                      temperature: float = 0.8, top_k: int = 50, top_p: float = 0.9, repetition_penalty: float = 1.0,
                      max_new_tokens: int = 30, seed: int = 0, chat: bool = False) -> widgets.VBox:
    """Build the explorer for a loaded causal LM. The returned VBox has `.controls`, `.result` (HTML),
    `.figure` (Image), `.stages` (the distributions last plotted), `.button` (Generate), `.progress` and
    `.generate()` / `.redraw()` for headless use."""
    from .. import checks

    model = checks.module("model", model)
    if tokenizer is None or not callable(getattr(tokenizer, "decode", None)):
        raise CourseError(f"tokenizer must be the model's tokenizer (from load(...)), got {type(tokenizer).__name__}")
    if not isinstance(prompt, str) or not isinstance(chat, bool):
        raise CourseError("prompt must be a string and chat True or False")
    check_settings(strategy, temperature, top_k, top_p, repetition_penalty, max_new_tokens)
    checks.whole_number("seed", seed, minimum=0)
    checks.whole_number("max_new_tokens", max_new_tokens, minimum=1, maximum=100)
    controls = {
        "prompt": widgets.Textarea(value=prompt, description="Prompt", style=style_wide(),
                                   layout=widgets.Layout(width="600px", height="60px")),
        "chat": widgets.Checkbox(value=chat, description="chat template", indent=False),
        "strategy": widgets.ToggleButtons(options=["greedy", "sample"], value=strategy, description="Strategy",
                                          style=style_wide()),
        "temperature": widgets.FloatText(value=temperature, step=0.1, description="Temperature", style=style_wide()),
        "top_k": widgets.IntText(value=top_k, description="Top-k (0 = off)", style=style_wide()),
        "top_p": widgets.FloatText(value=top_p, step=0.05, description="Top-p (1 = off)", style=style_wide()),
        "repetition_penalty": widgets.FloatText(value=repetition_penalty, step=0.1, description="Repetition penalty",
                                                style=style_wide()),
        "max_new_tokens": widgets.IntSlider(value=max_new_tokens, min=1, max=100, description="Max new tokens",
                                            continuous_update=False, style=style_wide()),
        "seed": widgets.IntText(value=seed, description="Seed", style=style_wide()),
    }
    tooltip(controls["temperature"], "Divides the logits: below 1 sharpens, above 1 flattens. Must be > 0.")
    tooltip(controls["top_k"], "Keep only the k most likely tokens (0 keeps all)")
    tooltip(controls["top_p"], "Keep the smallest set of likely tokens whose probabilities add up to p")
    tooltip(controls["repetition_penalty"], "Above 1 makes tokens already in the text less likely (1 = off)")
    button = widgets.Button(description="Generate", button_style="primary")
    progress = widgets.IntProgress(value=0, min=0, max=max_new_tokens, description="", layout=widgets.Layout(width="300px"))
    result = widgets.HTML()
    figure = image_widget(width="760px")
    cache: dict = {}

    def settings() -> dict:
        values = {name: c.value for name, c in controls.items()}
        check_settings(values["strategy"], values["temperature"], values["top_k"], values["top_p"],
                       values["repetition_penalty"], values["max_new_tokens"])
        return values

    def logits_for(values):
        key = (values["prompt"], values["chat"])
        if cache.get("key") != key:
            ids = prompt_ids(tokenizer, values["prompt"], values["chat"])
            cache.update(key=key, ids=ids, logits=next_token_logits(model, ids))
        return cache["ids"], cache["logits"]

    def redraw(_change=None) -> bool:
        try:
            values = settings()
            ids, logits = logits_for(values)
            stages = filter_stages(logits, ids, temperature=values["temperature"], top_k=values["top_k"],
                                   top_p=values["top_p"], repetition_penalty=values["repetition_penalty"])
        except CourseError as err:
            result.value = error_html(str(err))
            figure.value = b""
            return False
        if result.value.startswith(error_html("")[:40]):
            result.value = ""  # the input is valid again: the old message goes (issue 20)
        box.stages = stages
        show_figure(figure, plot_stages(stages, tokenizer))
        return True

    def run(_button=None) -> None:
        if not redraw():
            return
        values = settings()
        progress.max, progress.value = values["max_new_tokens"], 0
        button.disabled = True
        result.value = "<i>generating…</i>"
        try:
            text, out = generate_text(
                model, tokenizer, values["prompt"], values["max_new_tokens"], chat=values["chat"],
                strategy=values["strategy"], temperature=values["temperature"], top_k=values["top_k"],
                top_p=values["top_p"], repetition_penalty=values["repetition_penalty"], seed=values["seed"],
                on_token=lambda step, _tok: setattr(progress, "value", step + 1))
        except CourseError as err:
            result.value = error_html(str(err))
            return
        finally:
            button.disabled = False
        progress.value = progress.max
        result.value = (f"<div style='font-size:14px'><span style='color:#777'>{html.escape(values['prompt'])}</span>"
                        f"<b>{html.escape(text)}</b></div><div style='color:#777;font-size:12px'>"
                        f"{len(out.new_ids)} tokens, stopped by {out.stop_reason}, {out.seconds:.2f} s "
                        f"({out.tokens_per_second:.1f} tokens/s)</div>")

    for name, control in controls.items():
        if name not in ("max_new_tokens", "seed", "strategy"):
            control.observe(redraw, names="value")
    button.on_click(run)
    filters = widgets.HBox([widgets.VBox([controls["strategy"], controls["temperature"], controls["top_k"]]),
                            widgets.VBox([controls["top_p"], controls["repetition_penalty"], controls["seed"]])])
    box = widgets.VBox([widgets.HBox([controls["prompt"], controls["chat"]]), filters, controls["max_new_tokens"],
                        widgets.HBox([button, progress]), result, figure])
    box.controls, box.result, box.figure, box.button, box.progress = controls, result, figure, button, progress
    box.generate, box.redraw, box.stages = run, redraw, None
    redraw()
    return box
