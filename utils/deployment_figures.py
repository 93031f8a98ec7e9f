"""Lesson 12's deployment figures for this machine: SmolLM2-135M per precision.

Measures, for the REAL pretrained SmolLM2-135M-Instruct at fp32, bf16 and PyTorch dynamic int8
(CPU only): time to first token, decode tokens/s (median of repeated runs, with the min-max), throughput
at batch 4, weight memory, the peak memory of a fresh process while generating, perplexity under the course's
protocol (slmcourse.perplexity: quality), the operations one decode step launches (the planner's overhead
term), the energy per token (measured through RAPL/NVML where readable, else estimated from an assumed
power, and labelled so), and the machine's memory bandwidth with the share of the bandwidth limit reached
(weights + KV cache read per step, as slmcourse.planner counts them).

Writes course/DEPLOYMENT.md (beside the lessons, linked from the README) and build/deployment.json, so a learner
can compare their machine with ours. `make bench` runs it; on its own:

    .venv/bin/python utils/deployment_figures.py [--repeats 3] [--new-tokens 32] [--out course]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
ASSUMED_WATTS = 20.0   # power assumed where no meter is readable: a 2-core share of a server CPU (stated)
PROMPT = ("Small language models run on laptops, phones and single-board computers. Explain in two sentences "
          "why a smaller model answers faster than a larger one.")


def measure(precision: str, device: torch.device, repeats: int, new_tokens: int) -> dict:
    from slmcourse import bench as B
    from slmcourse import load, quant as Q
    from slmcourse.perplexity import heldout_perplexity

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model, tok = load("smollm2-135m", device=device, dtype=dtype)
    if precision == "int8-dynamic":
        model = Q.dynamic_int8(model)
    model.eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    weights = Q.model_size_bytes(model)
    ops = B.count_decode_ops(model, ids)
    peak = B.peak_memory(lambda: B.measure_energy(
        lambda: B.measure_latency(model, ids, new_tokens=new_tokens, repeats=repeats, warmup=1),
        assumed_watts=ASSUMED_WATTS), trace_python=False)
    energy = peak.result
    latency = energy.result
    tokens = min(new_tokens, 2) + repeats * new_tokens          # the warm-up run's tokens included
    batch = B.measure_latency(model, ids.repeat(4, 1), new_tokens=new_tokens, repeats=max(1, repeats - 1), warmup=1)
    ppl = heldout_perplexity(model, tok)
    row = {"precision": precision, "device": str(device), "weights_mb": round(weights / 1e6, 1),
           "read_mb": round(B.weight_bytes_read(model) / 1e6, 1),   # a lookup-only embedding: one row
           **latency.as_dict(), "batch4_throughput_tokens_per_s": round(batch.throughput_tokens_per_s, 2),
           "process_peak_mib": round(peak.rss_peak / 2 ** 20), "perplexity": round(ppl, 2),
           "decode_ops": ops, "joules_per_token": round(energy.per(tokens), 3), "energy": energy.label,
           "text": tok.decode(latency.new_ids[0], skip_special_tokens=True)}
    if peak.cuda_peak is not None:
        row["cuda_peak_mib"] = round(peak.cuda_peak / 2 ** 20)
    del model
    gc.collect()
    return row


RUNTIME_PRECISIONS = ("int4", "fp32")      # lesson 13's real runtime: SmolLM2 built in int4, and in float32


def measure_runtime(repeats: int, new_tokens: int) -> list | None:
    """Lesson 13's real on-device runtime: SmolLM2 in ONNX Runtime GenAI (int4, then float32), with the runtime's
    own KV cache. One row per build; None where onnxruntime-genai is not installed (the table then says so)."""
    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        return None
    import statistics

    from slmcourse import load
    from slmcourse import runtime as R

    model, tok = load("smollm2-135m", device="cpu")
    del model
    gc.collect()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    rows = []
    for precision in RUNTIME_PRECISIONS:
        rt = R.Runtime(R.build(precision))
        rt.generate(ids, 4)                                           # warm-up
        runs = [rt.generate(ids, new_tokens) for _ in range(repeats)]
        rows.append({"engine": f"ONNX Runtime GenAI {precision}", "weights_mb": round(rt.bytes / 1e6, 1),
                     "read_mb": round(rt.bytes_per_token / 1e6, 1),
                     "kv_mb": round(R.kv_bytes_per_token(rt.path, int(ids.shape[1]) + new_tokens) / 1e6, 2),
                     "ttft_ms": round(statistics.median(r.first_token_seconds for r in runs) * 1000, 1),
                     "decode_tokens_per_s": round(statistics.median(r.decode_tokens_per_second for r in runs), 1),
                     "prompt_tokens": int(ids.shape[1])})
        del rt
        gc.collect()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "course")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one precision, print JSON
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one == "runtime":
        torch.manual_seed(0)
        print("RESULT " + json.dumps(measure_runtime(args.repeats, args.new_tokens)))
        return 0
    if args.one:
        from slmcourse import pick_device

        torch.manual_seed(0)
        print("RESULT " + json.dumps(measure(args.one, pick_device(), args.repeats, args.new_tokens)))
        return 0

    from slmcourse import bench as B
    from slmcourse import catalogue, pick_device
    from slmcourse import planner as P
    from slmcourse.perplexity import PROTOCOL

    torch.manual_seed(0)
    card = catalogue.get("smollm2-135m")
    device = pick_device()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    bandwidth = B.measure_bandwidth(mib=256, repeats=5, device=device)
    precisions = ["fp32", "bf16"] + (["int8-dynamic"] if device.type == "cpu" else [])
    rows = []
    for precision in precisions:
        start = time.perf_counter()
        # each precision in a fresh process, so its peak memory is its own
        out = subprocess.run([sys.executable, __file__, "--one", precision, "--repeats", str(args.repeats),
                              "--new-tokens", str(args.new_tokens)], check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.split("RESULT ", 1)[1])
        # weights + the KV cache at the longest context of the timed steps (fp32 cache unless bf16 weights)
        kv = P.kv_bytes_read(card, row["prompt_tokens"] + args.new_tokens, "fp16" if precision == "bf16" else "fp32")
        bytes_read = row.get("read_mb", row["weights_mb"]) * 1e6 + kv
        bound = B.bandwidth_bound_tokens_per_s(bytes_read, bandwidth)
        row["bandwidth_bound_tokens_per_s"] = round(bound, 1)
        row["share_of_bound"] = round(row["decode_tokens_per_s"] / bound, 3)
        rows.append(row)
        print(f"  {precision:<13} TTFT {row['ttft_ms']:8.1f} ms   decode {row['decode_tokens_per_s']:6.1f} tokens/s "
              f"(bound {bound:6.1f})   batch 4 {row['batch4_throughput_tokens_per_s']:6.1f} tokens/s   "
              f"weights {row['weights_mb']:6.1f} MB   peak {row['process_peak_mib']:5d} MiB   "
              f"perplexity {row['perplexity']:.2f}   {row['decode_ops']} ops/step   "
              f"{row['joules_per_token']} J/token {row['energy']}   ({time.perf_counter() - start:.0f} s)", flush=True)

    runtime_rows = None
    if device.type == "cpu":
        out = subprocess.run([sys.executable, __file__, "--one", "runtime", "--repeats", str(args.repeats),
                              "--new-tokens", str(args.new_tokens)], capture_output=True, text=True)
        if out.returncode == 0 and "RESULT " in out.stdout:
            runtime_rows = json.loads(out.stdout.split("RESULT ", 1)[1])
        else:
            print(f"  runtime: not measured ({(out.stderr or out.stdout)[-300:]})", flush=True)
    for runtime_row in runtime_rows or []:
        # the bytes one decode step reads: weights at their stored precision, one row of each lookup table
        # (slmcourse.runtime.bytes_per_token), plus the runtime's float32 KV cache at the longest context
        bound = B.bandwidth_bound_tokens_per_s((runtime_row["read_mb"] + runtime_row["kv_mb"]) * 1e6, bandwidth)
        runtime_row["bandwidth_bound_tokens_per_s"] = round(bound, 1)
        runtime_row["share_of_bound"] = round(runtime_row["decode_tokens_per_s"] / bound, 3)
        print(f"  {runtime_row['engine']}: TTFT {runtime_row['ttft_ms']} ms, decode "
              f"{runtime_row['decode_tokens_per_s']} tokens/s (bound {bound:.1f})", flush=True)

    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"torch {torch.__version__}, device {device}")
    if device.type == "cuda":
        machine += f" ({torch.cuda.get_device_name()})"
    if load_before is not None:
        # other programs competing for the CPU slow every figure down: say how busy the machine was
        machine += (f"; system load average {load_before:.1f} at the start and "
                    f"{os.getloadavg()[0]:.1f} at the end")
    result = {"model": "SmolLM2-135M-Instruct (real pretrained weights)", "machine": machine,
              "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "prompt_tokens": rows[0]["prompt_tokens"], "new_tokens": args.new_tokens, "repeats": args.repeats,
              "bandwidth_gb_s": round(bandwidth / 1e9, 2), "precisions": rows, "runtime": runtime_rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "deployment.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Deployment figures (lesson 12)", "",
        f"SmolLM2-135M-Instruct, real weights, greedy decoding of {args.new_tokens} tokens after a "
        f"{rows[0]['prompt_tokens']}-token prompt; medians of {args.repeats} runs after a warm-up.", "",
        f"Measured by `make bench` (`utils/deployment_figures.py`) on {machine}, {result['measured_at']}. "
        f"Memory bandwidth reached by a large copy here: {result['bandwidth_gb_s']} GB/s.", "",
        "Compare with your own machine: run `python utils/deployment_figures.py --out /tmp/mine` and "
        "open `course/12_deployment.ipynb`.", "",
        "| precision | time to first token (ms) | decode (tokens/s) | decode ms/token (min-max) | batch-4 throughput "
        "(tokens/s) | bandwidth bound (tokens/s) | share of bound | weights (MB) | process peak (MiB) | perplexity "
        "| ops per decode step | energy (J/token) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lo, hi = r["decode_ms_per_token_min_max"]
        lines.append(f"| {r['precision']} | {r['ttft_ms']} | {r['decode_tokens_per_s']} | {r['decode_ms_per_token']} "
                     f"({lo}-{hi}) | {r['batch4_throughput_tokens_per_s']} | {r['bandwidth_bound_tokens_per_s']} | "
                     f"{r['share_of_bound']} | {r['weights_mb']} | {r['process_peak_mib']} | {r['perplexity']} | "
                     f"{r['decode_ops']} | {r['joules_per_token']} {r['energy']} |")
    lines += ["", "A real on-device runtime (lesson 13): the same prompt and greedy decoding in ONNX Runtime GenAI, "
              "SmolLM2 built in int4 and in float32 by its model builder, with the runtime's own KV cache "
              "(`slmcourse.runtime`). Bytes read per token: the weights at their stored precision, one row of each "
              "table that is only looked up (`runtime.bytes_per_token`), plus the KV cache at the longest context.", ""]
    if runtime_rows:
        lines += ["| engine | time to first token (ms) | decode (tokens/s) | bandwidth bound (tokens/s) | share of bound "
                  "| weights (MB) | read per token (MB) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['engine']} | {r['ttft_ms']} | {r['decode_tokens_per_s']} | {r['bandwidth_bound_tokens_per_s']} | "
                  f"{r['share_of_bound']} | {r['weights_mb']} | {round(r['read_mb'] + r['kv_mb'], 1)} |"
                  for r in runtime_rows]
    else:
        lines += ["Not measured on this machine (onnxruntime-genai missing, or a GPU run)."]
    lines += ["", "Notes:",
              "- The bandwidth bound is bandwidth / (weight bytes read + KV-cache bytes at the longest context): batch-1 "
              "decoding reads every weight and the whole cache once per token (`slmcourse.planner`), except a table "
              "that is only looked up (an embedding not shared with the LM head, as in int8-dynamic; rotary tables), "
              "of which it reads one row (`bench.weight_bytes_read`, `runtime.bytes_per_token`).",
              f"- Perplexity: the course's protocol, {PROTOCOL}.",
              "- Ops per decode step: operations launched one by one in one decode step (`bench.count_decode_ops`, "
              "views left out); the planner's eager overhead is this count x an assumed cost per launch "
              "(`planner.FRAMEWORKS`).",
              f"- Energy per generated token (prefill included): measured where RAPL or NVML is readable, else "
              f"estimated as time x an assumed {ASSUMED_WATTS:g} W; the label says which.",
              "- int8-dynamic is PyTorch's `quantize_dynamic` (CPU only): int8 weights and activations in the Linear "
              "layers; the embedding/LM head stay float32, so the weights shrink less than 4x.",
              "- bf16 halves the bytes read, but it only computes fast where the CPU has bf16 instructions (AVX512-BF16, AMX, recent ARM): compare the rows, do not assume.",
              "- The process peak includes Python, PyTorch and the tokenizer, not only the model.", ""]
    (args.out / "DEPLOYMENT.md").write_text("\n".join(lines))
    print(f"written: {args.out / 'DEPLOYMENT.md'} and build/deployment.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
