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
TIME_LIMIT_S = 20


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


def run_case(case: Case, limit_s: float = TIME_LIMIT_S) -> list[tuple[str, str, object, str]]:
    """[(argument, outcome, bad value, detail)] for every bad value of every fuzzed argument."""
    from slmcourse.errors import CourseError

    results = []
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for arg in case.good:
            if arg in case.skip:
                continue
            for bad in BAD:
                kwargs = dict(case.good, **{arg: bad})
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
                results.append((arg, outcome, bad, detail))
    finally:
        signal.signal(signal.SIGALRM, old)
    return results


def report(verbose: bool = False) -> Counter:
    totals = Counter()
    start = time.perf_counter()
    for case in cases():
        outcomes = run_case(case)
        counts = Counter(o for _, o, _, _ in outcomes)
        totals.update(counts)
        totals["callables"] += 1
        line = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{case.label:42s} {line}")
        if verbose:
            for arg, outcome, bad, detail in outcomes:
                if outcome in ("raw", "silent", "hang", "accepted"):
                    print(f"    {outcome:8s} {arg}={bad!r}: {detail}")
    tried = sum(totals[k] for k in ("clear", "accepted", "silent", "raw", "hang"))
    print(f"\n{totals['callables']} callables, {tried} bad-input cases in {time.perf_counter() - start:.0f} s")
    for key in ("clear", "accepted", "silent", "raw", "hang"):
        print(f"  {key:9s} {totals[key]:4d}  ({100 * totals[key] / max(tried, 1):.1f} %)")
    return totals


if __name__ == "__main__":
    report(verbose="--verbose" in sys.argv)
