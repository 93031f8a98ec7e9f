"""Issue 20, explorers: for every explorer, a bad control value shows a message, a corrected value clears it;
a bad constructor argument raises a CourseError (never traitlets' TraitError, never a silent clamp or fallback);
a control at the end of its range says so on screen. Headless; only tiny scaled-down models."""
from __future__ import annotations

import pytest
import torch

from slmcourse import CourseError

MESSAGE = "Cannot compute this"


class ToyTokenizer:
    """Just enough of a tokenizer for the decoding and temperature explorers (no files, no downloads)."""
    chat_template = None

    def __call__(self, text, return_tensors=None):
        ids = [min(ord(ch), 255) for ch in text]
        return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(max(32, int(i) % 256)) for i in ids)


@pytest.fixture(scope="module")
def tiny():
    from slmcourse import scaled_down

    torch.manual_seed(0)
    return scaled_down("smollm2-135m", vocab_size=256, num_hidden_layers=1).eval()


def _bad_then_good(box, name, bad, good):
    box.controls[name].value = bad
    assert MESSAGE in box.result.value, (name, bad, box.result.value[:300])
    box.controls[name].value = good
    assert MESSAGE not in box.result.value, (name, good, box.result.value[:300])


def _explorers(tiny):
    from slmcourse.explorers.architecture import architecture_explorer
    from slmcourse.explorers.chooser import chooser_explorer
    from slmcourse.explorers.decoding import decoding_explorer
    from slmcourse.explorers.deployment import planner_explorer
    from slmcourse.explorers.evaluation import evaluation_explorer
    from slmcourse.explorers.fit import fit_explorer
    from slmcourse.explorers.kv_cache import kv_cache_explorer
    from slmcourse.explorers.lora import lora_explorer
    from slmcourse.explorers.masks import mask_explorer
    from slmcourse.explorers.newest import newest_explorer
    from slmcourse.explorers.positions import position_explorer
    from slmcourse.explorers.quantization import quantization_explorer
    from slmcourse.explorers.temperature import temperature_explorer

    tok = ToyTokenizer()
    return {
        "architecture": lambda **k: architecture_explorer(**k),
        "chooser": lambda **k: chooser_explorer(**k),
        "decoding": lambda **k: decoding_explorer(tiny, tok, **{"max_new_tokens": 2, **k}),
        "deployment": lambda **k: planner_explorer(**k),
        "evaluation": lambda **k: evaluation_explorer(**k),
        "fit": lambda **k: fit_explorer(**k),
        "kv_cache": lambda **k: kv_cache_explorer(**k),
        "lora": lambda **k: lora_explorer(**k),
        "masks": lambda **k: mask_explorer(**k),
        "newest": lambda **k: newest_explorer(**k),
        "positions": lambda **k: position_explorer(**k),
        "quantization": lambda **k: quantization_explorer(tiny, **{"group_size": 16, **k}),
        "temperature": lambda **k: temperature_explorer(logits=torch.randn(256), tokenizer=tok, **k),
    }


# explorer -> control, a bad value, a good value (pushed in that order)
BAD_THEN_GOOD = {
    "architecture": ("context", -5, 2048),
    "chooser": ("context", -1, 2048),
    "decoding": ("temperature", 0.0, 0.7),
    "deployment": ("context", -1, 2048),
    "evaluation": ("model", "ladder-l", "smollm2-135m", {"chat": True}),  # no chat-template run for ladder-l
    "kv_cache": ("kv_heads", 4, 3),
    "lora": ("targets", (), ("q_proj",)),
    "masks": ("window", 40, 3),
    "newest": ("kv_heads", 5, 4),
    "positions": ("head", 20, 1),
    "temperature": ("top_k", 0, 3),
}

# explorer -> constructor arguments that must be refused with a CourseError
BAD_CONSTRUCTORS = {
    "architecture": [{"context": -1}, {"model": "smollm3-135m"}, {"device": 3}],
    "chooser": [{"task": "poetry"}, {"context": "long"}, {"latency_ms": float("nan")}],
    "decoding": [{"temperature": -1.0}, {"top_p": 1.5}, {"strategy": "beam"}, {"max_new_tokens": 10 ** 6},
                 {"seed": "x"}, {"prompt": 42}],
    "deployment": [{"target": "toaster"}, {"batch": 0}, {"efficiency": 2.0}],
    "evaluation": [{"task": "poetry"}, {"model": "gpt-4"}, {"model": None}],
    "fit": [{"context": 10 ** 9}, {"precision": "fp61"}],
    "kv_cache": [{"context": 10 ** 9}, {"batch": 0}, {"precision": "fp61"}, {"model": "bert-base"},
                 {"model": "nope"}],
    "lora": [{"rank": 3}, {"rank": 0}, {"targets": "q_prj"}, {"targets": ["q_proj", 7]}, {"model": "nope"}],
    "masks": [{"seq_len": 10_000}, {"window": -1}],
    "newest": [{"hidden": 10 ** 7}, {"hiden": 1024}, {"linear_share": 1.5}, {"experts": "many"}],
    "positions": [{"heads": -3}, {"head_dim": 1}],
    "quantization": [{"bits": 1}, {"bits": 16}, {"scheme": "nf4"}, {"group_size": 7}, {"matrix": "mlp.nothing"}],
    "temperature": [{"temperature": 0.0}, {"temperature": float("nan")}, {"top_k": 0}, {"prompt": None}],
}


@pytest.mark.parametrize("name", sorted(BAD_CONSTRUCTORS))
def test_constructor_refuses_bad_arguments_with_a_course_error(name, tiny):
    build = _explorers(tiny)[name]
    box = build()  # the defaults work
    assert MESSAGE not in box.result.value
    for kwargs in BAD_CONSTRUCTORS[name]:
        with pytest.raises(CourseError):
            build(**kwargs)


@pytest.mark.parametrize("name", sorted(BAD_THEN_GOOD))
def test_bad_control_value_shows_a_message_and_a_good_one_clears_it(name, tiny):
    box = _explorers(tiny)[name]()
    control, bad, good, *setup = BAD_THEN_GOOD[name]
    for key, value in (setup[0] if setup else {}).items():
        box.controls[key].value = value
    _bad_then_good(box, control, bad, good)


def test_every_explorer_constructor_refuses_bad_arguments(tiny):
    """Every *_explorer function of every explorer module is wrapped by refuses_bad_arguments (a new
    explorer added later included); the ones above are also driven with bad values."""
    import importlib
    import inspect
    import pkgutil

    from slmcourse import explorers

    assert set(BAD_CONSTRUCTORS) == set(_explorers(tiny))
    unwrapped = []
    for info in pkgutil.iter_modules(explorers.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"slmcourse.explorers.{info.name}")
        for name, fn in vars(module).items():
            if name.endswith("_explorer") and inspect.isfunction(fn) and fn.__module__ == module.__name__:
                if not hasattr(fn, "__wrapped__"):
                    unwrapped.append(f"{info.name}.{name}")
    assert not unwrapped, f"explorer constructors without @refuses_bad_arguments: {unwrapped}"


def test_a_control_at_the_end_of_its_range_is_said_on_screen():
    from slmcourse.explorers.kv_cache import kv_cache_explorer
    from slmcourse.explorers.masks import mask_explorer

    box = kv_cache_explorer()
    box.controls["layers"].value = 10_000          # BoundedIntText clamps this to 200
    assert box.controls["layers"].value == 200 and "at its maximum (200)" in box.result.value
    box.controls["layers"].value = 30
    assert "at its maximum" not in box.result.value
    box = mask_explorer(seq_len=16, window=4)
    assert "at its" not in box.result.value
