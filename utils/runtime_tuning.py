"""Lesson 13's runtime, tuned and measured: which ONNX Runtime GenAI settings bring SmolLM2 closest to its bound.

    flock /tmp/heavy.lock python utils/runtime_tuning.py      # on a shared machine: alone, it is timing

Builds (once, into ~/.cache/slmcourse) the variants the builder offers for SmolLM2 on a CPU — int4 with blocks of
32 (the course's build) and of 128, int8, float32 — then decodes the same 32 tokens after the same prompt as
`utils/deployment_figures.py` with each session setting (intra-op threads 1 or 2, thread spinning on or off), each
in a fresh process, ROUNDS rounds interleaved, 5 runs each after a warm-up. Prints a markdown table: the median
decode rate over all runs of a setting, the bytes one token reads (`runtime.bytes_per_token` + KV cache), and the
share of the bandwidth bound (a large copy's bandwidth, measured before and after; their mean).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "utils"))
ROUNDS, RUNS, NEW = 3, 5, 32
# (build name, builder --precision, builder extra options)
BUILDS = {"int4 blocks of 32": ("int4", None), "int4 blocks of 128": ("int4", "block_size=128"),
          "int8": ("int8", None), "fp32": ("fp32", None)}
# (build name, intra-op threads or None = ONNX Runtime's default, spinning or None = default)
SETTINGS = [("int4 blocks of 32", None, None), ("int4 blocks of 32", 2, True), ("int4 blocks of 32", 2, False),
            ("int4 blocks of 32", 1, None), ("int4 blocks of 128", 2, True), ("int8", 2, True), ("fp32", None, None),
            ("fp32", 2, True)]


def folder(name: str) -> Path:
    from slmcourse import runtime as R

    precision, extra = BUILDS[name]
    if extra is None:
        return R.build(precision)
    out = R.folder(precision).with_name(R.folder(precision).name + "-" + extra.replace("=", ""))
    if not (out / "genai_config.json").is_file():
        from slmcourse.bundled import prepare

        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(prepare("smollm2-135m", progress=False)),
               "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(out) + ".tmp", "--extra_options", extra]
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return out


def one(path: str, threads: int | None, spinning: bool | None) -> dict:
    """In a fresh process: decode rates of RUNS runs."""
    from deployment_figures import PROMPT
    from transformers import AutoTokenizer

    from slmcourse import runtime as R
    from slmcourse.bundled import cache_dir

    tok = AutoTokenizer.from_pretrained(str(cache_dir() / "smollm2-135m"))
    ids = tok(PROMPT, return_tensors="pt").input_ids
    rt = R.Runtime(path, threads=threads, spinning=spinning)
    rt.generate(ids, 4)
    runs = [rt.generate(ids, NEW) for _ in range(RUNS)]
    return {"rates": [r.decode_tokens_per_second for r in runs], "ttft": [r.first_token_seconds for r in runs],
            "read": rt.bytes_per_token + R.kv_bytes_per_token(path, int(ids.shape[1]) + NEW), "disk": rt.bytes,
            "same_tokens": len({tuple(r.new_ids) for r in runs}) == 1}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        threads = None if sys.argv[3] == "None" else int(sys.argv[3])
        spinning = None if sys.argv[4] == "None" else sys.argv[4] == "True"
        print("RESULT " + json.dumps(one(sys.argv[2], threads, spinning)))
        return 0
    from slmcourse import bench as B

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load = os.getloadavg()[0]
    paths = {name: folder(name) for name in BUILDS}
    bandwidths = [B.measure_bandwidth(mib=256, repeats=5)]
    results: dict[int, list] = {i: [] for i in range(len(SETTINGS))}
    for _ in range(ROUNDS):
        for i, (name, threads, spinning) in enumerate(SETTINGS):
            out = subprocess.run([sys.executable, __file__, "--one", str(paths[name]), str(threads), str(spinning)],
                                 check=True, capture_output=True, text=True)
            results[i].append(json.loads(out.stdout.split("RESULT ", 1)[1]))
    bandwidths.append(B.measure_bandwidth(mib=256, repeats=5))
    bandwidth = statistics.mean(bandwidths)
    print(f"ONNX Runtime GenAI, SmolLM2-135M-Instruct, {NEW} tokens after the deployment prompt; {ROUNDS} rounds x "
          f"{RUNS} runs per setting, interleaved, fresh process each; load average {load:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; bandwidth of a "
          f"large copy {bandwidths[0] / 1e9:.1f} and {bandwidths[1] / 1e9:.1f} GB/s (mean used).\n")
    print("| build | intra-op threads | spinning | decode (tokens/s), median | per-round medians | read per token (MB) "
          "| bound (tokens/s) | share of bound | TTFT (ms) |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for i, (name, threads, spinning) in enumerate(SETTINGS):
        rounds = results[i]
        rates = [x for r in rounds for x in r["rates"]]
        rate, read = statistics.median(rates), rounds[0]["read"]
        bound = bandwidth / read
        per_round = ", ".join(f"{statistics.median(r['rates']):.1f}" for r in rounds)
        ttft = 1000 * statistics.median(t for r in rounds for t in r["ttft"])
        print(f"| {name} | {threads or 'default'} | {'default' if spinning is None else ('on' if spinning else 'off')} "
              f"| {rate:.1f} | {per_round} | {read / 1e6:.1f} "
              f"| {bound:.1f} | {rate / bound:.2f} | {ttft:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
