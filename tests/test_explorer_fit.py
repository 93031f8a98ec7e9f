"""The "will it fit?" explorer, driven headless: controls change the result, nonsense gives a message."""
from slmcourse.explorers._common import IPYWIDGETS_MAJOR, tooltip
from slmcourse.explorers.fit import fit_explorer
from slmcourse.memory import fit


def test_moving_a_control_changes_the_result():
    box = fit_explorer(model="smollm2-135m", precision="fp16", context=2048, device="Laptop (16 GB RAM)")
    first = box.result.value
    assert "Fits" in first and fit("smollm2-135m", "fp16", 2048).summary() in first
    assert box.figure.value[:8] == b"\x89PNG\r\n\x1a\n"
    box.controls["context"].value = 8192
    assert box.result.value != first and "8192 tokens" in box.result.value


def test_a_model_that_does_not_fit_is_said_so():
    box = fit_explorer(model="mistral-7b", precision="fp32", context=4096, device="Phone (8 GB RAM)")
    assert "Does not fit" in box.result.value


def test_impossible_input_gives_a_message_not_a_traceback():
    box = fit_explorer(model="smollm2-135m")
    box.controls["context"].value = 20_096
    assert "Cannot compute this" in box.result.value and "8,192 tokens" in box.result.value
    assert box.figure.layout.display == "none"
    box.controls["context"].value = 1024  # and it recovers
    assert "Fits" in box.result.value and box.figure.layout.display != "none"


def test_tooltips_work_on_ipywidgets_7_and_8():
    import ipywidgets as widgets

    slider = tooltip(widgets.IntSlider(), "hello")
    attribute = "tooltip" if IPYWIDGETS_MAJOR >= 8 else "description_tooltip"
    assert getattr(slider, attribute) == "hello"


def test_formats_are_priced_at_real_bits_and_the_kv_cache_is_its_own_control():
    box = fit_explorer(model="mistral-7b", precision="Q4_K_M", context=4096, device="Raspberry Pi 5 (8 GB)")
    labels = dict((v, k) for k, v in box.controls["precision"].options)
    assert labels["Q4_K_M"] == "Q4_K_M (5.43 bits/weight)" and "ideal lower bound" in labels["int4"]
    assert fit("mistral-7b", "Q4_K_M", 4096, 1, "Raspberry Pi 5 (8 GB)").summary() in box.result.value
    box.controls["kv_precision"].value = "Q8_0"
    assert fit("mistral-7b", "Q4_K_M", 4096, 1, "Raspberry Pi 5 (8 GB)", kv_precision="Q8_0").summary() in box.result.value
    box.controls["precision"].value = "int4"
    assert "ideal lower bound" in box.result.value
