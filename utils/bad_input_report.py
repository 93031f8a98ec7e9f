"""How the package answers bad input: try bad values on every argument of the public API, count the outcomes.

    .venv/bin/python utils/bad_input_report.py [--verbose]

Every public callable of every slmcourse module is swept unless it is listed as not swept with a reason.
Its good call comes from `cases()` (hand-written), from `_registry()` (built from tiny resources: a scaled-down
model, the bundled tokenizer, a tiny BERT, the bundled GGUF file, small tensors and records), or from the
argument-name table of `_resources()`; it must succeed within 10 s. Then every argument in turn gets each bad
value of BAD (wrong type, empty, zero, negative, NaN/inf, huge) while the others stay good (None is not tried
where None is the argument's own default). An outcome is
  clear     a CourseError (a message naming the argument, what was given and what is expected);
  accepted  a result (counted only when it is sane: no NaN, no negative size; the value really was allowed);
  silent    a result with NaN/inf, or a negative number where a size belongs (callables in SIGNED, whose
            results are log-probabilities, losses or differences, may return negative numbers);
  raw       any other exception (a traceback from deep inside a library);
  hang      past the per-call time limit.
The goal (issue 20): clear >= 95 % of all cases, the rest accepted, none silent, raw or hung.
"""
from __future__ import annotations

import contextlib
import io
import math
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAN, INF = float("nan"), float("inf")
# Bad values a learner types: wrong types, empty, zero, negative, NaN/inf, huge.
BAD = (None, "abc", "", -1, 0, NAN, INF, -INF, True, [], 10 ** 12, 2.5, {"a": 1})
TIME_LIMIT_S = 15  # a real hang never returns; a valid call slowed down by a loaded shared machine does
# True: also sweep the callables whose good call the registry below builds (a tiny BERT, the bundled GGUF file,
# the ONNX Runtime folder, ...; about a minute). tests/test_bad_input.py sets it False to stay fast in `make test`
# and tests those callables' fixes one by one instead.
WIDE = True


class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang()


def _sane(value, depth: int = 0, signed: bool = False) -> bool:
    """No NaN/inf and (unless `signed`) no negative numbers anywhere in a result (sizes, bytes, rates are never
    negative)."""
    if depth > 3:
        return True
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value) and (signed or value >= 0)
    if isinstance(value, dict):
        return all(_sane(v, depth + 1, signed) for v in list(value.values())[:200])
    if isinstance(value, (list, tuple)):
        return all(_sane(v, depth + 1, signed) for v in list(value)[:200])
    try:
        import torch

        if isinstance(value, torch.Tensor) and value.is_floating_point():
            # -inf is how a filter masks a token out; NaN, +inf or everything masked is wrong
            return not bool(torch.isnan(value).any() or torch.isposinf(value).any() or torch.isneginf(value).all())
    except ImportError:
        pass
    for attr in ("total", "weights", "kv_cache", "tokens_per_s", "memory_needed"):
        if hasattr(value, attr) and not callable(getattr(value, attr)):
            if not _sane(getattr(value, attr), depth + 1, signed):
                return False
    return True


@dataclass
class Case:
    label: str
    fn: object
    good: dict
    skip: tuple = ()          # arguments not fuzzed (e.g. a callback)
    allowed: dict | None = None  # argument -> predicate: bad values that are legitimately valid
    signed: bool = False      # a negative number in the result is correct (a log-probability, a loss)
    defaults: dict | None = None  # argument -> its default: passing the default itself is not bad input


def cases() -> list[Case]:
    import slmcourse
    from slmcourse import anatomy, catalogue, checks, choose, env, launch, memory, models, planner

    card = catalogue.get("smollm2-135m")
    target = planner.get_target(list(planner.TARGETS)[0]) if hasattr(planner, "TARGETS") else None
    out = [
        Case("model_card", slmcourse.model_card, {"name": "smollm2-135m"}),
        Case("attention_kind", slmcourse.attention_kind, {"heads": 8, "kv_heads": 2}),
        Case("model_names", slmcourse.model_names, {"bundled": True}),
        Case("count_parameters", slmcourse.count_parameters, {"model": "smollm2-135m"}),
        Case("parameter_breakdown", slmcourse.parameter_breakdown, {"model": "smollm2-135m"}),
        Case("full_size", slmcourse.full_size, {"name": "smollm2-135m"}),
        Case("scaled_down", slmcourse.scaled_down, {"name": "smollm2-135m", "seed": 0}),
        Case("pick_device", slmcourse.pick_device, {"prefer": "cpu"}),
        Case("load (refused before loading)", slmcourse.load, {"name_or_hub_id": "no-such-model!!", "device": "cpu"}),
        Case("models.make_config", models.make_config, {"name": "smollm2-135m"}),
        Case("models.parameter_part", models.parameter_part, {"param_name": "model.layers.0.mlp.up_proj.weight"},
             allowed={"param_name": lambda v: isinstance(v, str)}),  # any name has a part ("other")
        Case("catalogue.find", catalogue.find, {"name": "smollm2-135m"},
             allowed={"name": lambda v: True}),  # find() answers None for anything unknown, by design
        Case("memory.weights_bytes", memory.weights_bytes, {"n_params": 1000, "precision": "fp16"}),
        Case("memory.training_bytes", memory.training_bytes, {"n_params": 1000}),
        Case("memory.model_kv_cache_bytes", memory.model_kv_cache_bytes,
             {"name": "smollm2-135m", "seq_len": 128, "batch": 1, "bytes_per_element": 2.0}),
        Case("memory.activation_bytes", memory.activation_bytes,
             {"name": "smollm2-135m", "seq_len": 128, "batch": 1, "bytes_per_element": 2.0, "eager_attention": False}),
        Case("memory.fit", memory.fit, {"model": "smollm2-135m", "precision": "fp16", "context": 2048, "batch": 1,
                                        "device": "Laptop (16 GB RAM)", "kv_precision": "fp16"}),
        Case("anatomy.memory_rows", anatomy.memory_rows, {"name_or_params": "smollm2-135m", "context": 2048}),
        Case("anatomy.format_label", anatomy.format_label, {"precision": "fp16"}),
        Case("anatomy.anatomy", anatomy.anatomy, {"name_or_hub_id": "smollm2-135m", "context": 512, "max_depth": 2}),
        Case("choose.tasks_of", choose.tasks_of, {"model": "smollm2-135m"}),
        Case("choose.is_multilingual", choose.is_multilingual, {"model": "smollm2-135m"}),
        Case("choose.ranking_basis", choose.ranking_basis, {"prefer": "quality"}),
        Case("choose.Constraints", choose.Constraints, {"context": 2048}),
        Case("planner.default_kv_precision", planner.default_kv_precision, {"precision": "bf16"}),
        Case("planner.flops_per_token", planner.flops_per_token, {"n_params": 1000}),
        Case("planner.bytes_per_token", planner.bytes_per_token, {"n_params": 1000, "precision": "fp32"}),
        Case("planner.bandwidth_bound_tokens_per_s", planner.bandwidth_bound_tokens_per_s,
             {"n_bytes": 1e6, "bandwidth_bytes_per_s": 1e9}),
        Case("planner.energy_per_token", planner.energy_per_token, {"seconds_per_token": 0.1, "watts": 10.0}),
        Case("planner.cost_per_million_tokens", planner.cost_per_million_tokens,
             {"tokens_per_s": 10.0, "price_per_hour": 1.0}),
        Case("planner.get_framework", planner.get_framework, {"name": "eager"}),
        Case("planner.kv_bytes_read", planner.kv_bytes_read, {"card": card, "context": 128}),
        Case("planner.plan_targets", planner.plan_targets, {"model": "smollm2-135m", "precision": "bf16",
                                                            "latency_budget_ms": 100.0}),
        Case("env.is_online", env.is_online, {"host": "127.0.0.1", "port": 9, "timeout": 0.2},
             allowed={"host": lambda v: True}),  # any host string just answers False offline
        Case("launch.colab_url", launch.colab_url, {"notebook": "course/00_setup.ipynb"}),
        Case("launch.binder_url", launch.binder_url, {"notebook": "course/00_setup.ipynb"}),
        Case("checks.whole_number", checks.whole_number, {"name": "n", "value": 3, "minimum": 1, "maximum": 10},
             skip=("name", "minimum", "maximum")),
        Case("checks.positive_number", checks.positive_number, {"name": "x", "value": 1.5}, skip=("name",)),
        Case("checks.fraction", checks.fraction, {"name": "p", "value": 0.5}, skip=("name",)),
        Case("checks.one_of", checks.one_of, {"name": "kind", "value": "a", "choices": ["a", "b"]},
             skip=("name", "choices")),
        Case("checks.string_list", checks.string_list, {"name": "skip", "value": ["lm_head"]}, skip=("name",)),
        Case("checks.tensor", checks.tensor, {"name": "x", "value": [[1.0, 2.0]], "ndim": 2}, skip=("name", "ndim")),
        Case("checks.finite_tensor", checks.finite_tensor, {"name": "x", "value": [1.0, 2.0]}, skip=("name",)),
        Case("checks.device", checks.device, {"name": "device", "value": "cpu"}, skip=("name",)),
    ]
    import torch

    from slmcourse import generation, perplexity

    tiny = models.scaled_down("smollm2-135m")
    out += [
        Case("generation.process_logits", generation.process_logits,
             {"logits": torch.randn(32), "strategy": "sample", "temperature": 1.0, "top_k": 5, "top_p": 0.9,
              "repetition_penalty": 1.0}),
        Case("generation.check_settings", generation.check_settings,
             {"strategy": "sample", "temperature": 1.0, "top_k": 5, "top_p": 0.9, "repetition_penalty": 1.0,
              "max_new_tokens": 8}),
        Case("perplexity.perplexity (scaled-down model)", perplexity.perplexity,
             {"model": tiny, "ids": torch.randint(0, 100, (1, 40)), "context": 16, "stride": 8}),
    ]
    if hasattr(planner, "get_target"):
        try:
            first = next(iter(getattr(planner, "TARGETS", {}) or {}))
            out.append(Case("planner.get_target", planner.get_target, {"name": first}))
            out.append(Case("planner.plan_deployment", planner.plan_deployment,
                            {"model": "smollm2-135m", "target": first, "precision": "bf16", "latency_budget_ms": 100.0}))
        except StopIteration:
            pass
    del target
    return out


def _top_level(label: str) -> str:
    """The module.name of a top-level export's label ("count_parameters" -> "models.count_parameters")."""
    import slmcourse

    obj = getattr(slmcourse, label.split(" ")[0], None)
    module = getattr(obj, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{getattr(obj, '__name__', label)}"


_SAVED_FDS: dict = {}


def _restore_std_streams() -> str:
    """Reopen stdin/stdout/stderr if a call closed them (open(1) on a number given as a path closes fd 1
    when its file object goes); names what was closed, '' when nothing."""
    import os

    if not _SAVED_FDS:
        _SAVED_FDS.update({fd: os.dup(fd) for fd in (0, 1, 2)})
    closed = []
    for fd, copy in _SAVED_FDS.items():
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(copy, fd)
            closed.append({0: "stdin", 1: "stdout", 2: "stderr"}[fd])
    return " and ".join(closed)


def _close_figures() -> None:
    """Close the figures a plotting function drew (hundreds of cases would otherwise keep them all)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def run_case(case: Case, limit_s: float | None = None) -> list[tuple[str, str, object, str]]:
    """[(argument, outcome, bad value, detail)] for every bad value of every fuzzed argument (each call is cut
    off after `limit_s`, default TIME_LIMIT_S, and counted as a hang)."""
    limit_s = limit_s or TIME_LIMIT_S
    from slmcourse.errors import CourseError

    import copy

    import torch

    # a fresh copy of any model for each callable: some functions change a model in place (that is their job)
    good = {k: copy.deepcopy(v) if isinstance(v, torch.nn.Module) else v for k, v in case.good.items()}
    results = []
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for arg in good:
            if arg in case.skip:
                continue
            for bad in BAD:
                if isinstance(good[arg], bool) and isinstance(bad, bool):
                    continue  # True/False is a valid value of a flag, not bad input
                if bad is None and case.defaults and arg in case.defaults and case.defaults[arg] is None:
                    continue  # None is this argument's own default: not bad input
                kwargs = dict(good, **{arg: bad})
                signal.setitimer(signal.ITIMER_REAL, limit_s)
                try:
                    with contextlib.redirect_stdout(io.StringIO()):  # what a callable prints is not the report
                        value = case.fn(**kwargs)
                except CourseError as err:
                    outcome, detail = "clear", str(err)[:120]
                except Hang:
                    outcome, detail = "hang", f"> {limit_s} s"
                except Exception as err:  # noqa: BLE001 - that is what is measured
                    outcome, detail = "raw", f"{type(err).__name__}: {str(err)[:100]}"
                else:
                    ok = _sane(value, signed=case.signed)
                    outcome = "accepted" if ok else "silent"
                    if ok and case.allowed and arg in case.allowed and case.allowed[arg](bad):
                        outcome = "accepted"
                    detail = (repr(value).splitlines() or [""])[0][:80]
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    closed = _restore_std_streams()
                    _close_figures()
                if closed:
                    outcome, detail = "raw", f"closed the process's {closed} (a number taken as a file descriptor)"
                results.append((arg, outcome, bad, detail))
    finally:
        signal.signal(signal.SIGALRM, old)
    return results


# ---- the whole public API --------------------------------------------------------------------------------
# Modules whose public callables are swept (explorers have their own test, tests/test_explorer_bad_values.py;
# diagrams take no input; prepare is the command-line entry; errors holds only exception classes).
NOT_SWEPT_MODULES = {"explorers", "diagrams", "prepare", "errors"}
# Callables that are not swept, with the reason (each listed in the report).
NOT_SWEPT = {
    "bundled.convert": "writes the converted model into the cache",
    "bundled.prepare": "converts/downloads a model into the cache",
    "bundled.prepare_all": "converts every bundled model into the cache",
    "prepare.main": "command line",
    "speculative.main": "command line",
    "speculative.train_draft": "trains a draft model for minutes",
    "speculative.load_draft": "loads or trains the draft model",
    "bench.measure_bandwidth": "copies hundreds of MiB per call (a benchmark)",
    "models.release_freed_memory": "takes no argument",
    "bundled.load_bundled": "loads a full bundled model per call (its input checks are swept through load())",
    "checks.guard_public": "the package's own gate builder (takes a module's namespace at import), not learner input",
    "checks.typed": "the package's own gate builder (wraps a package function at import), not learner input",
    "serve.ModelServer": "opens a network server per call (its handler is swept: serve.generation_handler)",
    "serve.export_onnx": "exports an ONNX file per call (tens of seconds)",
    "serve.request": "needs a running server (serve.ModelServer, not swept); its handler is swept",
    "dpo.read_preferences": "no preference file ships with the package (lesson 11 builds its pairs with "
                            "dpo.concise_preferences, which is swept)",
}
# Whole modules not swept, with the reason (each of their callables is listed in the report).
NOT_SWEPT_MODULE_REASONS = {
    "gradecheck": "the graders' helpers (called by hidden tests in the grading sandbox with a learner's answer, "
                  "not by a learner): a wrong answer ends in an AssertionError there by design",
}


def public_callables() -> list[tuple[str, object]]:
    """("module.name", callable) for every public function and class that a slmcourse module defines
    (its __all__ when it has one), result records (dataclasses the package returns) included."""
    import importlib
    import inspect
    import pkgutil

    import slmcourse

    found = []
    for info in sorted(pkgutil.iter_modules(slmcourse.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in NOT_SWEPT_MODULES:
            continue
        module = importlib.import_module(f"slmcourse.{info.name}")
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name, None)
            if obj is None or not callable(obj) or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            found.append((f"{info.name}.{name}", obj))
    return found


def _is_record(obj) -> bool:
    """A dataclass the package returns (a result record), not an entry point a learner calls with input."""
    import dataclasses
    import inspect

    if inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        return True  # a named tuple such as load()'s Loaded(model, tokenizer)
    return inspect.isclass(obj) and dataclasses.is_dataclass(obj) and not hasattr(obj, "__post_init__")


class _ToyTokenizer:
    def __call__(self, text, return_tensors=None, **_):
        ids = [min(ord(ch), 255) for ch in text]
        return {"input_ids": __import__("torch").tensor([ids]) if return_tensors == "pt" else ids}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(max(32, int(i) % 256)) for i in ids)


def _resources() -> dict:
    """Good values by argument name: a tiny scaled-down model, the bundled SmolLM2 tokenizer, small tensors."""
    import torch
    from transformers import AutoTokenizer

    from slmcourse import bundled, catalogue, models

    torch.manual_seed(0)
    card = catalogue.get("smollm2-135m")
    tiny = models.scaled_down("smollm2-135m").eval()
    try:
        tok = AutoTokenizer.from_pretrained(str(bundled.model_dir(card)))
    except Exception:  # noqa: BLE001 - no converted model here: a toy tokenizer
        tok = _ToyTokenizer()
    g = torch.Generator().manual_seed(0)
    return {
        "model": tiny, "teacher": tiny, "student": tiny, "target": tiny, "draft": tiny, "encoder": tiny,
        "tokenizer": tok, "card": card, "name": "smollm2-135m", "name_or_hub_id": "smollm2-135m",
        "context": 64, "seq_len": 64, "kv_len": 64, "batch": 1, "bits": 4, "precision": "fp16", "kv_precision": "fp16",
        "x": torch.randn(4, 64, generator=g), "weight": torch.randn(8, 64, generator=g),
        "q": torch.randn(1, 4, 8, 16, generator=g), "k": 2, "v": torch.randn(1, 2, 8, 16, generator=g),
        "logits": torch.randn(64, generator=g), "student_logits": torch.randn(2, 5, 64, generator=g),
        "teacher_logits": torch.randn(2, 5, 64, generator=g), "probs": torch.softmax(torch.randn(64, generator=g), 0),
        "seed": 0, "temperature": 1.0, "top_k": 5, "top_p": 0.9, "repetition_penalty": 1.0, "max_new_tokens": 2,
        "new_tokens": 2, "shots": 0, "group_size": 32, "scheme": "absmax", "layers": 2, "heads": 4, "kv_heads": 2,
        "n_heads": 4, "head_dim": 16, "window": 4, "n_params": 1000, "text": "hello world", "texts": ["hello world"],
        "prompt": "Hello", "question": "What is 2 + 2?", "answer": "4", "sentences": ["a cat", "a dog"],
        "input_ids": torch.randint(0, 100, (1, 8), generator=g), "ids": torch.randint(0, 100, (1, 40), generator=g),
        "blocks": torch.randint(0, 100, (2, 16), generator=g), "amount": 0.5, "alpha": 0.5, "rank": 4, "r": 4,
        "steps": 2, "positions": torch.arange(8), "base": 10000.0, "bytes_per_element": 2.0, "n_rep": 2,
        "n_layers": 4, "n_items": 10, "batch_size": 2, "block_size": 8, "head": 0, "experts": 4,
        "numel": 1024, "row_length": 64, "repeats": 1, "warmup": 0, "n_tokens": 100, "stride": 32,
        "seconds_per_token": 0.1, "watts": 10.0, "tokens_per_s": 10.0, "price_per_hour": 1.0,
        "latency_budget_ms": 100.0, "efficiency": 0.7, "runtime": "eager", "prefer": "quality",
        "level": 0.95, "n_boot": 50, "correct": [True, False, True, True], "gold": "4", "prediction": "4",
        "a": [1.0, 2.0, 3.0], "b": [1.0, 3.0, 2.0], "n_bytes": 1e6, "bandwidth_bytes_per_s": 1e9,
        "train_len": 8, "length": 8, "vocab": 16, "d_model": 16, "position": "rope", "kind": "rope",
        "path": "README.md", "notebook": "course/00_setup.ipynb", "param_name": "model.layers.0.mlp.up_proj.weight",
        "hidden": torch.randn(1, 4, 64, generator=g),
    }


# Good calls the name registry cannot guess: "module.name" -> keyword arguments (values may be callables
# of the resources, evaluated lazily).
GOOD = {
    "catalogue.find": {"name": "smollm2-135m"},
}



# ---- good calls for the callables the name registry cannot build -------------------------------------------
# "module.name" -> function(resources) -> keyword arguments of a valid, cheap call. Each argument is then
# perturbed in turn like every other case. SKIP names arguments that are not fuzzed (a callable given to run).
def _registry(res: dict) -> dict:
    import torch

    from slmcourse import (ablation, bench, catalogue, choose, constrained, distill, gguf_inspect, kvquant, memory,
                           models, planner, positions, quant, sft, training)

    g = torch.Generator().manual_seed(1)
    rnd = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    tiny, tok, card = res["model"], res["tokenizer"], res["card"]
    bert = res["bert"]
    results = res["ablation"]
    schema = {"name": "string", "age": "integer"}
    parts = constrained.json_schema_parts(schema)
    texts = res["token_texts"]
    q4 = gguf_inspect.quantize_q4_1_block(rnd(32).numpy())
    logits = rnd(2, 6, 50)
    labels = torch.randint(0, 50, (2, 6), generator=g)
    sparse = distill.teacher_topk(rnd(2, 6, 50), 5, 2.0)
    lang = positions.MarkovLanguage()
    mlp = tiny.model.layers[0].mlp
    item = res["eval_item"]
    reader = res["gguf"]
    tname = "blk.0.attn_k.weight"
    runs = {
        "ablation.find": lambda: {"results": results, **res["ablation_key"]},
        "ablation.plot": lambda: {"results": results},
        "ablation.qlora_table": lambda: {"results": results},
        "ablation.rows": lambda: {"results": results},
        "ablation.table": lambda: {"results": results},
        "anatomy.albert_parameter_count": lambda: {"config": res["albert_config"]},
        "anatomy.llama_parameter_count": lambda: {"config": tiny.config},
        "anatomy.meta_from_config": lambda: {"fields": models.make_config("smollm2-135m").to_dict()},
        "attention.attention_layer": lambda: {"hidden": rnd(1, 5, 32), "wq": rnd(32, 32), "wk": rnd(16, 32),
                                      "wv": rnd(16, 32), "wo": rnd(32, 32), "heads": 4, "kv_heads": 2},
        "attention.attention_weights": lambda: {"q": rnd(1, 2, 5, 8), "k": rnd(1, 2, 5, 8)},
        "attention.grouped_query_attention": lambda: {"q": rnd(1, 4, 5, 8), "k": rnd(1, 2, 5, 8), "v": rnd(1, 2, 5, 8)},
        "attention.receptive_field": lambda: {"masks": [torch.tril(torch.ones(5, 5, dtype=torch.bool))] * 2},
        "attention.repeat_kv": lambda: {"x": rnd(1, 2, 5, 8), "n_rep": 2},
        "attention.rope": lambda: {"x": rnd(1, 2, 5, 8), "positions": torch.arange(5)},
        "attention.scaled_dot_product_attention": lambda: {"q": rnd(1, 2, 5, 8), "k": rnd(1, 2, 5, 8), "v": rnd(1, 2, 5, 8)},
        "attention.sliding_window_attention": lambda: {"q": rnd(1, 2, 5, 8), "k": rnd(1, 2, 5, 8), "v": rnd(1, 2, 5, 8),
                                               "window": 2},
        "attention.tiled_attention": lambda: {"q": rnd(1, 2, 5, 8), "k": rnd(1, 2, 5, 8), "v": rnd(1, 2, 5, 8), "block": 2},
        "bench.Timing": lambda: {"samples": (0.1, 0.2, 0.15)},
        "bench.measure_energy": lambda: {"fn": lambda: sum(range(100)), "assumed_watts": 10.0},
        "bench.peak_memory": lambda: {"fn": lambda: sum(range(100))},
        "bench.time_it": lambda: {"fn": lambda: sum(range(100)), "repeats": 2, "warmup": 0},
        "bundled.shipped_json": lambda: {"file": ablation.FILE, "sha256": ablation.SHA256,
                                         "script": "utils/finetune_ablation.py", "module": "slmcourse/ablation.py"},
        "bundled.verify": lambda: {"path": Path(__file__), "expected": res["sha_self"], "what": "this script"},
        "checks.callback": lambda: {"name": "on_step", "value": print},
        "checks.closest": lambda: {"value": "fp61", "choices": ["fp16", "fp32"]},
        "checks.config_overrides": lambda: {"model_type": "llama", "overrides": {"num_hidden_layers": 2}},
        "checks.model_or_name": lambda: {"name": "model", "value": "smollm2-135m"},
        "checks.module": lambda: {"name": "model", "value": tiny},
        "checks.text": lambda: {"name": "prompt", "value": "hello"},
        "checks.texts": lambda: {"name": "texts", "value": ["hello", "world"]},
        "choose.evaluate": lambda: {"model": "smollm2-135m", "constraints": choose.Constraints()},
        "choose.measured_quality": lambda: {"model": "smollm2-135m"},
        "choose.table": lambda: {"candidates": [choose.evaluate("smollm2-135m", choose.Constraints())]},
        "choose.tuning_ok": lambda: {"model": "smollm2-135m", "task": None},
        "constrained.advance": lambda: {"parts": parts, "state": (0, 0), "text": '{"na'},
        "constrained.allowed_mask": lambda: {"parts": parts, "state": (0, 0), "token_texts": texts},
        "constrained.constrained_choice": lambda: {"logits": rnd(len(texts)), "parts": parts, "state": (0, 0),
                                           "token_texts": texts},
        "constrained.constrained_generate": lambda: {"model": tiny, "input_ids": torch.tensor([[1, 2, 3]]), "parts": parts,
                                             "texts": res["vocab_texts"], "eos_id": 0, "max_new_tokens": 3},
        "constrained.is_complete": lambda: {"parts": parts, "state": (0, 0)},
        "constrained.json_schema_parts": lambda: {"schema": schema},
        "constrained.parse_object": lambda: {"text": '{"name": "Ann", "age": 31}', "schema": schema},
        "distill.causal_lm_distill_step": lambda: {"student": tiny, "blocks": torch.randint(0, 100, (2, 8), generator=g),
                                           "teacher": distill.teacher_topk(rnd(2, 7, len(tok)), 4, 2.0),
                                           "alpha": 0.5},
        "distill.distillation_loss": lambda: {"student_logits": logits, "teacher": rnd(2, 6, 50), "labels": labels},
        "distill.embedding_distill_loss": lambda: {"student_emb": rnd(4, 16), "teacher_emb": rnd(4, 16)},
        "distill.encode": lambda: {"model": bert, "tokenizer": res["bert_tokenizer"], "sentences": ["a cat", "a dog"]},
        "distill.mean_pool": lambda: {"last_hidden": rnd(2, 5, 16), "attention_mask": torch.ones(2, 5, dtype=torch.long)},
        "distill.similarity_score": lambda: {"model": bert, "tokenizer": res["bert_tokenizer"],
                                     "pairs": [("a cat", "a dog", 0.5), ("a car", "a bus", 0.6), ("red", "blue", 0.1)]},
        "distill.student_from_teacher": lambda: {"teacher": bert, "layers": [0]},
        "distill.topk_rest_kl": lambda: {"student_logits": logits, "teacher": sparse},
        "dpo.concise_preferences": lambda: {"pairs": [("What is 2+2?", "It is 4. Adding is easy. Next: try 3+3.")]},
        "dpo.dpo_loss": lambda: {"policy_chosen": rnd(3), "policy_rejected": rnd(3), "ref_chosen": rnd(3),
                         "ref_rejected": rnd(3)},
        "dpo.pair_batch": lambda: {"tokenizer": tok, "pair": {"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}},
        "dpo.sequence_logprob": lambda: {"logits": logits, "labels": labels},
        "evaluate.build_prompt": lambda: {"tokenizer": tok, "name": "arithmetic", "item": item},
        "evaluate.chat_prompt": lambda: {"tokenizer": tok, "name": "arithmetic", "item": item},
        "evaluate.contamination": lambda: {"items": [item], "corpus": "some text " * 20},
        "evaluate.continuation_logprobs": lambda: {"model": tiny, "tokenizer": tok, "context": "2 + 2 =",
                                           "continuations": [" 4", " 5"]},
        "evaluate.encode_pair": lambda: {"tokenizer": tok, "context": "2 + 2 =", "continuation": " 4"},
        "evaluate.evaluate": lambda: {"model": tiny, "tokenizer": tok, "name": "arithmetic", "items": [item],
                              "max_new_tokens": 2},
        "evaluate.few_shot_prompt": lambda: {"name": "arithmetic", "item": item, "shots": 1},
        "evaluate.fewshot_examples": lambda: {"name": "arithmetic", "shots": 2},
        "evaluate.format_question": lambda: {"name": "arithmetic", "item": item},
        "evaluate.gold_text": lambda: {"item": item},
        "evaluate.judge": lambda: {"model": tiny, "tokenizer": tok, "question": "2+2?", "first": "4", "second": "5"},
        "evaluate.judge_prompt": lambda: {"question": "2+2?", "first": "4", "second": "5"},
        "evaluate.load_items": lambda: {"name": "arithmetic", "limit": 3},
        "evaluate.mcnemar": lambda: {"a": [1, 0, 1, 1], "b": [1, 1, 0, 1]},
        "evaluate.measured_accuracy": lambda: {"model": res["measured_model"], "name": "arithmetic"},
        "evaluate.ngrams": lambda: {"text": "a b c d", "n": 2},
        "evaluate.paired_bootstrap": lambda: {"a": [1, 0, 1, 1], "b": [1, 1, 0, 1], "n_boot": 50},
        "evaluate.pick": lambda: {"logprobs": [-1.0, -2.0], "choices": ["yes", "no"]},
        "evaluate.position_bias": lambda: {"model": tiny, "tokenizer": tok, "pairs": [("2+2?", "4", "5")]},
        "evaluate.run_result": lambda: {"model": res["measured_model"], "name": "arithmetic"},
        "evaluate.task": lambda: {"name": "arithmetic"},
        "exercises.check": lambda: {"answer": 1.0, "expected": 1.0},
        "generation.apply_repetition_penalty": lambda: {"logits": rnd(50), "previous_ids": [1, 2], "penalty": 1.2},
        "generation.choose_token": lambda: {"scores": rnd(50)},
        # 4 new tokens, not the default 20: uncached (use_cache=0 is tried) 20 tokens pass the time limit on a busy machine
        "generation.generate": lambda: {"model": tiny, "input_ids": torch.randint(0, 100, (1, 8), generator=g),
                                        "max_new_tokens": 4},
        "generation.top_p_filter": lambda: {"logits": rnd(50), "p": 0.9},
        "gguf_inspect.bits_per_weight": lambda: {"qtype": "Q4_1"},
        "gguf_inspect.block_position": lambda: {"path_or_reader": reader, "tensor_name": tname},
        "gguf_inspect.block_size": lambda: {"qtype": "Q4_1"},
        "gguf_inspect.decode_q4_1_block": lambda: {"raw": q4},
        "gguf_inspect.dequantize_q4_1_block": lambda: {"raw": q4},
        "gguf_inspect.dequantize_tensor": lambda: {"path_or_reader": reader, "tensor_name": tname},
        "gguf_inspect.file_bits_per_weight": lambda: {"path_or_reader": reader},
        "gguf_inspect.header_tensors": lambda: {"path": str(res["gguf_path"])},
        "gguf_inspect.library_dequantize_block": lambda: {"raw": q4},
        "gguf_inspect.library_quantize_block": lambda: {"values": rnd(32).numpy()},
        "gguf_inspect.metadata": lambda: {"path_or_reader": reader},
        "gguf_inspect.open_gguf": lambda: {"path_or_reader": reader},
        "gguf_inspect.quantize_q4_1_block": lambda: {"values": rnd(32).numpy()},
        "gguf_inspect.quantize_tensor": lambda: {"values": rnd(2, 32).numpy()},
        "gguf_inspect.raw_block": lambda: {"path_or_reader": reader, "tensor_name": tname},
        "gguf_inspect.role": lambda: {"tensor_name": tname},
        "gguf_inspect.tensor_bytes": lambda: {"path_or_reader": reader, "tensor_name": tname},
        "gguf_inspect.tensor_table": lambda: {"path_or_reader": reader},
        "gguf_inspect.type_name": lambda: {"qtype": "Q4_1"},
        "gguf_inspect.type_summary": lambda: {"path_or_reader": reader},
        "gguf_inspect.types_by_role": lambda: {"path_or_reader": reader},
        "kvquant.dequantize": lambda: dict(zip(("q", "scale", "minimum"), kvquant.quantize(rnd(1, 2, 5, 8), 4, "token"))),
        "kvquant.kv_bytes": lambda: {"n_layers": 2, "n_kv_heads": 2, "head_dim": 8, "tokens": 16},
        "kvquant.reuse_prefix": lambda: {"model": tiny, "prefix_cache": kvquant.prefill(tiny, torch.tensor([[1, 2, 3]]))[1],
                                 "suffix_ids": torch.tensor([[4, 5]])},
        "ladder.build": lambda: {"name": "ladder-xs"},
        "ladder.config": lambda: {"name": "ladder-xs"},
        "ladder.load_ladder": lambda: {"name": "ladder-xs"},
        "ladder.parameters": lambda: {"name": "ladder-xs"},
        "lora.LoRALinear": lambda: {"base": torch.nn.Linear(8, 8), "r": 2},
        "lora.remove_lora": lambda: {"model": res["lora_model"]},
        "newest.gated_delta_rule": lambda: {"q": rnd(1, 2, 5, 8), "k": rnd(1, 2, 5, 8), "v": rnd(1, 2, 5, 8),
                                    "g": -torch.rand(1, 2, 5, generator=g), "beta": torch.rand(1, 2, 5, generator=g)},
        "newest.load_balancing_loss": lambda: {"router_logits": rnd(10, 4), "k": 2},
        "newest.mla_attention": lambda: res["mla"],
        "newest.mla_bytes_per_token": lambda: {"layers": 2, "rank": 16, "rope_dim": 8},
        "newest.moe_block": lambda: {"hidden": rnd(5, 16), "router_weight": rnd(4, 16), "gate_up": rnd(4, 64, 16),
                             "down": rnd(4, 16, 32), "k": 2},
        "newest.rope_interleaved": lambda: {"x": rnd(1, 2, 5, 8), "positions": torch.arange(5)},
        "newest.route_top_k": lambda: {"hidden": rnd(5, 16), "router_weight": rnd(4, 16), "k": 2},
        "planner.decode_step": lambda: {"card": card, "tgt": planner.get_target(next(iter(planner.TARGETS)))},
        "planner.energy_range": lambda: {"seconds_per_token": 0.1, "watts_low": 5.0, "watts_high": 10.0},
        "planner.plan_all": lambda: {"target": next(iter(planner.TARGETS))},
        "plots.plot_fit": lambda: {"report": memory.fit("smollm2-135m")},
        "positions.extrapolation_experiment": lambda: {"kinds": ("rope",), "train_len": 8, "lengths": (8, 16), "steps": 2,
                                               "progress": False},
        "positions.loss_at_length": lambda: {"model": positions.TinyLM(16, "rope", d_model=16), "language": lang,
                                     "length": 8, "batch": 2},
        "positions.train_tiny": lambda: {"kind": "rope", "language": lang, "train_len": 8, "steps": 2, "batch": 2},
        "quant.channels_to_keep": lambda: {"scores": rnd(16).abs(), "amount": 0.5},
        "quant.cut_mlp_channels": lambda: {"mlp": mlp, "keep": torch.arange(8)},
        "quant.dequantize": lambda: {"qt": quant.quantize(rnd(4, 32), bits=4)},
        "quant.mlp_channel_scores": lambda: {"mlp": mlp},
        "quant.wanda_mask": lambda: {"weight": rnd(8, 16), "input_norm": rnd(16).abs(), "amount": 0.5},
        "quant.wanda_score": lambda: {"weight": rnd(8, 16), "input_norm": rnd(16).abs()},
        "rag.Retriever": lambda: {"encoder": bert, "tokenizer": res["bert_tokenizer"], "passages": ["a cat", "a dog"]},
        "rag.embed": lambda: {"encoder": bert, "tokenizer": res["bert_tokenizer"], "texts": ["a cat", "a dog"]},
        "rag.rag_message": lambda: {"question": "Who?", "passages": ["a cat", "a dog"]},
        "rag.top_k": lambda: {"query": rnd(16), "passages": rnd(4, 16)},
        "serve.OnnxCausalLM": lambda: {"path": str(res["onnx_folder"] / "model.onnx"), "threads": 1},
        "runtime.bytes_per_token": lambda: {"path": res["onnx_folder"]},
        "runtime.initializer_bytes": lambda: {"tensor": __import__("onnx").load(
            str(res["onnx_folder"] / "model.onnx"), load_external_data=False).graph.initializer[0]},
        "runtime.kv_bytes_per_token": lambda: {"path": res["onnx_folder"], "context": 64},
        "sft.answer_perplexity": lambda: {"model": tiny, "examples": sft.chat_examples(tok, [("Hi?", "Hello.")])},
        "sft.chat_examples": lambda: {"tokenizer": tok, "pairs": [("Hi?", "Hello.")]},
        "sft.choice_logprobs": lambda: {"model": tiny, "tokenizer": tok, "context": "2 + 2 =", "choices": [" 4", " 5"]},
        "sft.mc_correct": lambda: {"model": tiny, "tokenizer": tok, "items": res["mc_items"]},
        "sft.trained_text": lambda: {"tokenizer": tok, "labels": torch.tensor([-100, 5, 6, 7])},
        "speculative.expected_speedup": lambda: {"alpha": 0.8, "k": 4, "cost_ratio": 0.1},
        "speculative.lookup_proposals": lambda: {"sequence": [1, 2, 3, 1, 2, 3, 1, 2], "k": 2},
        "speculative.rejection_sample": lambda: {"p": torch.softmax(rnd(50), 0), "q": torch.softmax(rnd(50), 0)},
        "training.plot_losses": lambda: {"histories": [res["history"]]},
        "training.read_data": lambda: {"name": "heldout_general.txt"},
        "training.token_blocks": lambda: {"tokenizer": tok, "texts": "hello world " * 40, "block_size": 8},
        "training.train": lambda: {"model": res["train_model"], "step_loss": res["step_loss"], "steps": 2,
                           "progress": False},
    }
    out = {}
    for label, build in runs.items():
        try:
            value = build()
        except Exception as err:  # noqa: BLE001 - reported as not swept, with the reason
            value = {"_": Unavailable(f"the good call could not be built: {type(err).__name__}: {str(err)[:60]}")}
        if value is not None:
            out[label] = value
    return out


SKIP = {  # arguments not fuzzed: a clock the benchmark calls; the package's own labels and settings of a checker
    "bench.measure_energy": ("clock",), "bench.time_it": ("clock",),
    "checks.closest": ("choices", "n"), "checks.model_or_name": ("name", "build"),
    "checks.config_overrides": ("model_type", "base"), "checks.module": ("name",),
    "checks.text": ("name", "allow_empty"), "checks.texts": ("name", "allow_empty"),
    "checks.callback": ("name", "allow_none"),
}
# Callables whose correct result may be negative (log-probabilities, losses, differences, correlations):
# a negative number there is not a silent wrong result (NaN and inf still are).
SIGNED = {"evaluate.continuation_logprobs", "sft.choice_logprobs", "evaluate.paired_bootstrap", "dpo.dpo_loss",
          "dpo.sequence_logprob", "distill.distillation_loss", "distill.causal_lm_distill_step",
          "distill.embedding_distill_loss", "distill.topk_rest_kl", "distill.similarity_score", "newest.gated_delta_rule",
          "newest.mla_attention", "newest.moe_block", "newest.rope_interleaved", "newest.route_top_k",
          "attention.attention_layer", "attention.rope", "positions.loss_at_length", "quant.dequantize",
          "kvquant.dequantize", "gguf_inspect.dequantize_q4_1_block", "gguf_inspect.library_dequantize_block",
          "gguf_inspect.dequantize_tensor", "gguf_inspect.decode_q4_1_block", "sft.answer_perplexity",
          "evaluate.pick", "quant.wanda_score", "quant.mlp_channel_scores", "speculative.rejection_sample"}


class Unavailable:
    """A good value that could not be built here (the callable is then listed as not swept, with the reason)."""

    def __init__(self, why: str):
        self.why = why


def _registry_resources(res: dict) -> dict:
    """The heavier shared values the registry needs, built once."""
    import hashlib

    import torch

    from slmcourse import ablation, bundled, catalogue, evaluate, gguf_inspect, lora, models, training

    g = torch.Generator().manual_seed(2)
    tok = res["tokenizer"]
    out = {}
    # a tiny BERT encoder with the bundled tokenizer's vocabulary (no BERT tokenizer is bundled)
    out["bert"] = models.scaled_down("bert-tiny", vocab_size=len(tok)).eval()
    out["bert_tokenizer"] = tok
    try:
        import json

        # the shipped results as they are (ablation.load() also checks their recorded digest)
        out["ablation"] = json.loads((Path(ablation.__file__).parent / "data" / ablation.FILE).read_text("utf-8"))
        first = ablation.rows(out["ablation"])[0]
        out["ablation_key"] = {k: first[k] for k in ("rank", "targets", "steps") if k in first}
    except Exception as err:  # noqa: BLE001 - e.g. the shipped results are being regenerated
        out["ablation"] = Unavailable(f"the shipped ablation results do not load: {str(err)[:60]}")
        out["ablation_key"] = {}
    out["albert_config"] = models.make_config("albert-base")
    out["token_texts"] = ['{', '"', 'name', 'age', ':', ' ', '1', '2', 'A', 'n', '}', ',', 'x'] + [""]
    out["eval_item"] = evaluate.load_items("arithmetic", limit=1)[0]
    out["measured_model"] = evaluate.load_scores()["runs"][0]["model"]
    try:
        out["gguf_path"] = gguf_inspect.bundled_gguf("gemma-3-270m")
        out["gguf"] = gguf_inspect.open_gguf(out["gguf_path"])
    except Exception:  # noqa: BLE001
        out["gguf_path"] = out["gguf"] = None
    from slmcourse import constrained, runtime

    out["vocab_texts"] = constrained.token_texts(tok)
    out["onnx_folder"] = runtime.folder("int4")
    out["sha_self"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    m = models.scaled_down("smollm2-135m")
    lora.inject_lora(m, r=2)
    out["lora_model"] = m
    ids = torch.randint(0, 100, (1, 6), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    out["sft_examples"] = [(ids, labels)]
    out["mc_items"] = [{"id": "x-00", "question": "2 + 2 =", "choices": ["4", "5"], "answer": 0}]
    out["history"] = training.History(name="run", losses=[3.0, 2.5, 2.0]) if hasattr(training, "History") else None
    tm = torch.nn.Linear(4, 1)
    out["train_model"] = tm
    x = torch.randn(8, 4, generator=g)
    out["step_loss"] = lambda step: tm(x).pow(2).mean()
    rw = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    out["mla"] = {"x": rw(1, 5, 16), "w": {"q": rw(16, 16), "kv_a": rw(12, 16), "kv_norm": torch.ones(8),
                                           "kv_b": rw(16, 8), "o": rw(16, 8)},
                  "heads": 2, "rank": 8, "nope_dim": 4, "rope_dim": 4, "v_dim": 4}
    preferences = [p for p in ("preferences.json", "dpo_preferences.json", "concise_preferences.json")
                   if (Path(models.__file__).parent / "data" / p).is_file()]
    out["preferences_file"] = preferences[0] if preferences else None
    return out


def auto_cases(handwritten: dict) -> tuple[list[Case], list[tuple[str, str]]]:
    """A Case for every public callable not in `handwritten`: its good call built from the name registry
    (arguments with defaults keep them unless the registry or GOOD names them). Returns (cases, not swept)."""
    import inspect

    res = _resources()
    registry = {}
    if WIDE:
        res.update(_registry_resources(res))
        registry = _registry(res)
    cases_, left = [], []
    for label, obj in public_callables():
        if label in handwritten:
            continue
        if label in NOT_SWEPT:
            left.append((label, NOT_SWEPT[label]))
            continue
        if label.split(".")[0] in NOT_SWEPT_MODULE_REASONS:
            left.append((label, NOT_SWEPT_MODULE_REASONS[label.split(".")[0]]))
            continue
        if _is_record(obj):
            left.append((label, "a result record the package returns (a plain dataclass: it holds what it is given)"))
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            left.append((label, "no signature"))
            continue
        good, missing = {}, []
        override = {k: v(res) if callable(v) and not hasattr(v, "forward") else v
                    for k, v in GOOD.get(label, {}).items()}
        override.update(registry.get(label, {}))  # used as they are (some are callables: a step function)
        for pname, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if pname in override:
                good[pname] = override[pname]
            elif param.default is not inspect.Parameter.empty:
                good[pname] = param.default
            elif pname in res:
                good[pname] = res[pname]
            else:
                missing.append(pname)
        if missing:
            left.append((label, f"no good value known for {', '.join(missing)}"))
            continue
        unavailable = [v.why for v in list(good.values()) + list(override.values()) if isinstance(v, Unavailable)]
        if unavailable:
            left.append((label, unavailable[0]))
            continue
        defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        cases_.append(Case(label, obj, good, skip=SKIP.get(label, ()), signed=label in SIGNED, defaults=defaults))
    return cases_, left


def _good_call_works(case: Case, limit_s: float = 10) -> str | None:
    """None when the good call returns within the limit, else why not."""
    import copy

    import torch

    good = {k: copy.deepcopy(v) if isinstance(v, torch.nn.Module) else v for k, v in case.good.items()}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            case.fn(**good)
    except Hang:
        return f"the good call took > {limit_s} s"
    except Exception as err:  # noqa: BLE001
        return f"the good call failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:80]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return None


FAILURES: list = []  # (callable, argument, outcome, bad value) of every silent or hung case of the last report


def guarded_modules() -> set[str]:
    """The slmcourse modules that put the shared typed gate (checks.guard_public) on their public functions."""
    import slmcourse

    root = Path(slmcourse.__file__).parent
    return {f.stem for f in root.glob("*.py") if "_guard_public(globals())" in f.read_text(encoding="utf-8")}


def report(verbose: bool = False) -> Counter:
    totals = Counter()
    start = time.perf_counter()
    listed = cases()
    handwritten = {c.label.split(" ")[0] if "." in c.label.split(" ")[0] else _top_level(c.label) for c in listed}
    extra, left = auto_cases(handwritten)
    only = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")]
    extra = [c for c in extra if not only or c.label.startswith(tuple(only))]
    for case in extra:
        why = _good_call_works(case)
        if why:
            left.append((case.label, why))
        else:
            listed.append(case)
    only = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")]
    if only:
        listed = [c for c in listed if c.label.startswith(tuple(only))]
    _restore_std_streams()
    for case in listed:
        outcomes = run_case(case)
        counts = Counter(o for _, o, _, _ in outcomes)
        for arg, outcome, bad, _ in outcomes:
            if outcome in ("silent", "hang"):
                FAILURES.append((case.label, arg, outcome, bad))
        totals.update(counts)
        totals["callables"] += 1
        line = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{case.label:42s} {line}")
        if verbose:
            for arg, outcome, bad, detail in outcomes:
                if outcome in ("raw", "silent", "hang", "accepted"):
                    print(f"    {outcome:8s} {arg}={bad!r}: {detail}")
    tried = sum(totals[k] for k in ("clear", "accepted", "silent", "raw", "hang"))
    public = len(public_callables())
    totals["public"], totals["not swept"] = public, len(left)
    print(f"\nnot swept ({len(left)} of {public} public callables):")
    for label, why in sorted(left):
        print(f"    {label:40s} {why}")
    print(f"\n{public} public callables, {totals['callables']} swept, {tried} bad-input cases in "
          f"{time.perf_counter() - start:.0f} s")
    for key in ("clear", "accepted", "silent", "raw", "hang"):
        print(f"  {key:9s} {totals[key]:4d}  ({100 * totals[key] / max(tried, 1):.1f} %)")
    return totals


if __name__ == "__main__":
    report(verbose="--verbose" in sys.argv)
