"""How the package answers bad input: try bad values on every argument of the public API, count the outcomes.

    .venv/bin/python utils/bad_input_report.py [--verbose]

For each callable below, the good call (its `good` keyword arguments) must succeed; then every argument
in turn gets each bad value of BAD (wrong type, empty, zero, negative, NaN/inf, huge) while the others
stay good. An outcome is
  clear     a CourseError (a message naming the argument, what was given and what is expected);
  accepted  a result (counted only when it is sane: no NaN, no negative size; the value really was allowed);
  silent    a result with NaN/inf or a negative number where a size belongs;
  raw       any other exception (a traceback from deep inside a library);
  hang      past the per-call time limit.
The goal (issue 20): clear >= 95 % of all cases, the rest accepted, none silent, raw or hung.
"""
from __future__ import annotations

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
TIME_LIMIT_S = 5


class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang()


def _sane(value, depth: int = 0) -> bool:
    """No NaN/inf and no negative numbers anywhere in a result (sizes, bytes, rates are never negative)."""
    if depth > 3:
        return True
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value) and value >= 0
    if isinstance(value, dict):
        return all(_sane(v, depth + 1) for v in list(value.values())[:200])
    if isinstance(value, (list, tuple)):
        return all(_sane(v, depth + 1) for v in list(value)[:200])
    try:
        import torch

        if isinstance(value, torch.Tensor) and value.is_floating_point():
            # -inf is how a filter masks a token out; NaN, +inf or everything masked is wrong
            return not bool(torch.isnan(value).any() or torch.isposinf(value).any() or torch.isneginf(value).all())
    except ImportError:
        pass
    for attr in ("total", "weights", "kv_cache", "tokens_per_s", "memory_needed"):
        if hasattr(value, attr) and not callable(getattr(value, attr)):
            if not _sane(getattr(value, attr), depth + 1):
                return False
    return True


@dataclass
class Case:
    label: str
    fn: object
    good: dict
    skip: tuple = ()          # arguments not fuzzed (e.g. a callback)
    allowed: dict | None = None  # argument -> predicate: bad values that are legitimately valid


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


def run_case(case: Case, limit_s: float = TIME_LIMIT_S) -> list[tuple[str, str, object, str]]:
    """[(argument, outcome, bad value, detail)] for every bad value of every fuzzed argument."""
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
                kwargs = dict(good, **{arg: bad})
                signal.setitimer(signal.ITIMER_REAL, limit_s)
                try:
                    value = case.fn(**kwargs)
                except CourseError as err:
                    outcome, detail = "clear", str(err)[:120]
                except Hang:
                    outcome, detail = "hang", f"> {limit_s} s"
                except Exception as err:  # noqa: BLE001 - that is what is measured
                    outcome, detail = "raw", f"{type(err).__name__}: {str(err)[:100]}"
                else:
                    ok = _sane(value)
                    outcome = "accepted" if ok else "silent"
                    if ok and case.allowed and arg in case.allowed and case.allowed[arg](bad):
                        outcome = "accepted"
                    detail = repr(value)[:80]
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    closed = _restore_std_streams()
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


def auto_cases(handwritten: dict) -> tuple[list[Case], list[tuple[str, str]]]:
    """A Case for every public callable not in `handwritten`: its good call built from the name registry
    (arguments with defaults keep them unless the registry or GOOD names them). Returns (cases, not swept)."""
    import inspect

    res = _resources()
    cases_, left = [], []
    for label, obj in public_callables():
        if label in handwritten:
            continue
        if label in NOT_SWEPT:
            left.append((label, NOT_SWEPT[label]))
            continue
        if _is_record(obj):
            left.append((label, "a result record (a dataclass the package returns)"))
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            left.append((label, "no signature"))
            continue
        good, missing = {}, []
        override = GOOD.get(label, {})
        for pname, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if pname in override:
                value = override[pname]
                good[pname] = value(res) if callable(value) and not hasattr(value, "forward") else value
            elif param.default is not inspect.Parameter.empty:
                good[pname] = param.default
            elif pname in res:
                good[pname] = res[pname]
            else:
                missing.append(pname)
        if missing:
            left.append((label, f"no good value known for {', '.join(missing)}"))
            continue
        cases_.append(Case(label, obj, good))
    return cases_, left


def _good_call_works(case: Case, limit_s: float = 10) -> str | None:
    """None when the good call returns within the limit, else why not."""
    import copy

    import torch

    good = {k: copy.deepcopy(v) if isinstance(v, torch.nn.Module) else v for k, v in case.good.items()}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        case.fn(**good)
    except Hang:
        return f"the good call took > {limit_s} s"
    except Exception as err:  # noqa: BLE001
        return f"the good call failed: {type(err).__name__}: {str(err)[:80]}"
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
