"""slmcourse.serve: a bounded, stoppable loopback JSON endpoint, and a generation handler."""
import threading
import time

import pytest
import torch

from slmcourse import CourseError, load
from slmcourse import serve as S


def echo(payload):
    if payload.get("fail"):
        raise CourseError("you asked me to fail")
    if payload.get("crash"):
        raise RuntimeError("boom")
    time.sleep(payload.get("sleep", 0))
    return {"echo": payload.get("text")}


def test_round_trip_health_and_errors():
    with S.ModelServer(echo, timeout_s=5) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, body, seconds = S.request(server.url + "/generate", {"text": "hi"})
        assert status == 200 and body["echo"] == "hi" and seconds > 0
        assert body["queued_s"] >= 0 and body["handler_s"] >= 0
        status, body, _ = S.request(server.url + "/generate", {"fail": True})
        assert status == 400 and body["error"] == "you asked me to fail"
        status, body, _ = S.request(server.url + "/generate", {"crash": True})
        assert status == 500 and "RuntimeError: boom" in body["error"]
        status, body, _ = S.request(server.url + "/health")
        assert status == 200 and body["status"] == "ok" and body["requests_served"] == 3
        assert S.request(server.url + "/nothing")[0] == 404
    assert not server.running


def test_body_limit_and_bad_json():
    with S.ModelServer(echo, max_body_bytes=64) as server:
        status, body, _ = S.request(server.url + "/generate", {"text": "x" * 200})
        assert status == 413 and "64 bytes" in body["error"]
        import urllib.request

        req = urllib.request.Request(server.url + "/generate", data=b"[1, 2", method="POST")
        try:
            S._OPENER.open(req, timeout=5)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 400


def test_requests_queue_one_at_a_time():
    with S.ModelServer(echo) as server:
        replies = []

        def call():
            replies.append(S.request(server.url + "/generate", {"sleep": 0.2})[1])

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        waits = sorted(r["queued_s"] for r in replies)
        assert waits[0] < 0.15 and waits[-1] >= 0.3      # the third waited for the other two


def test_lifetime_stops_the_server():
    server = S.ModelServer(echo, lifetime_s=0.3).start()
    time.sleep(0.8)
    assert not server.running
    server.stop()                                        # stopping twice is harmless


def test_only_loopback_is_allowed():
    with pytest.raises(CourseError, match="loopback"):
        S.ModelServer(echo, host="0.0.0.0")
    with pytest.raises(CourseError, match="local teaching server"):
        S.request("http://example.com/generate", {})
    with pytest.raises(CourseError, match="handler"):
        S.ModelServer("not a function")
    with pytest.raises(CourseError, match="timeout_s"):
        S.ModelServer(echo, timeout_s=0)
    with pytest.raises(CourseError, match="not running"):
        _ = S.ModelServer(echo).url
    assert S._is_loopback("127.0.0.1") and S._is_loopback("::1") and not S._is_loopback("10.0.0.1")


@pytest.fixture(scope="module")
def smollm():
    return load("smollm2-135m", device="cpu")     # REAL pretrained SmolLM2-135M-Instruct


def test_generation_handler_matches_generate(smollm):
    model, tok = smollm
    handle = S.generation_handler(model, tok, max_new_tokens=8)
    with S.ModelServer(handle) as server:
        status, body, _ = S.request(server.url + "/generate", {"prompt": "The capital of France is",
                                                               "max_new_tokens": 5})
        assert status == 200 and body["new_tokens"] == 5
        ids = tok("The capital of France is", return_tensors="pt").input_ids
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False,
                             pad_token_id=tok.eos_token_id)
        assert body["text"] == tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
        status, body, _ = S.request(server.url + "/generate", {"prompt": "hi", "max_new_tokens": 100})
        assert status == 400 and "from 1 to 8" in body["error"]
        status, body, _ = S.request(server.url + "/generate", {"max_new_tokens": 2})
        assert status == 400 and "prompt" in body["error"]
        status, body, _ = S.request(server.url + "/generate", {"prompt": "Hello", "chat": True, "max_new_tokens": 3})
        assert status == 200 and body["prompt_tokens"] > 3


def test_onnx_export_gives_the_same_logits(tmp_path):
    from slmcourse import scaled_down

    tiny = scaled_down("smollm2-135m")               # SCALED-DOWN random-weight Llama
    ids = torch.randint(0, tiny.config.vocab_size, (1, 7), generator=torch.Generator().manual_seed(0))
    path = S.export_onnx(tiny, tmp_path / "tiny.onnx", ids)
    assert path.exists() and (tmp_path / "tiny.onnx.data").stat().st_size > 0
    runner = S.OnnxCausalLM(path, threads=1)
    other = torch.randint(0, tiny.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(1))
    for batch in (ids, other):                       # dynamic batch and length
        with torch.no_grad():
            ref = tiny(batch).logits
        assert torch.allclose(runner.logits(batch), ref, atol=1e-4)
    with pytest.raises(CourseError, match="example_ids"):
        S.export_onnx(tiny, tmp_path / "x.onnx", torch.ones(3, dtype=torch.long))
