"""Deployment plumbing: a minimal local model service (a JSON endpoint on 127.0.0.1, in a background
thread) and export to ONNX (`export_onnx`, run by ONNX Runtime with `OnnxCausalLM`).

Lesson 12 puts a model behind HTTP to show what a deployment adds around `model.generate`:
a request format, input limits, a queue (one model, one request at a time), timeouts, and the
overhead of the round trip - each measurable. It is a teaching server, deliberately small:

- it listens on the loopback interface only (127.0.0.1 / ::1) and answers loopback clients only;
- it is bounded: request bodies up to `max_body_bytes`, at most `max_new_tokens` per request, a
  socket timeout per connection, and it stops itself after `lifetime_s` seconds if nobody stops it;
- it is stoppable: `stop()`, or use it as a context manager (`with ModelServer(...) as server:`).

For production you would use a real inference server (vLLM, TGI, llama.cpp's server, Triton), which
add continuous batching, streaming and many workers.
"""
from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from .errors import CourseError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
Handler = Callable[[dict], dict]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ModelServer:
    """Serve `handler(payload: dict) -> dict` as POST /generate (JSON in, JSON out); GET /health.

    Requests run one at a time (a lock in front of the model: the simplest queue); each response says
    how long it waited in the queue and how long the handler took. Errors come back as JSON with
    status 400 (bad input: the handler raised CourseError/ValueError) or 500.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 30.0,
                 max_body_bytes: int = 16_384, lifetime_s: float = 600.0):
        if not callable(handler):
            raise CourseError("the server needs a handler function: payload dict in, result dict out")
        if host not in LOOPBACK_HOSTS:
            raise CourseError(f"this teaching server only listens on the loopback interface ({', '.join(LOOPBACK_HOSTS)}), "
                              f"not {host!r}: exposing a model to a network needs authentication and more")
        for name, value in (("timeout_s", timeout_s), ("lifetime_s", lifetime_s)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise CourseError(f"{name} must be a number of seconds > 0, got {value!r}")
        if not isinstance(max_body_bytes, int) or max_body_bytes < 2:
            raise CourseError(f"max_body_bytes must be a whole number >= 2, got {max_body_bytes!r}")
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise CourseError(f"port must be 0 (any free port) or 1-65535, got {port!r}")
        self.handler, self.host, self.port = handler, host, port
        self.timeout_s, self.max_body_bytes, self.lifetime_s = float(timeout_s), max_body_bytes, float(lifetime_s)
        self.requests_served = 0
        self._lock = threading.Lock()          # the model handles one request at a time
        self._count_lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise CourseError("the server is not running: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._httpd.server_address[1]}"

    def start(self) -> "ModelServer":
        if self._httpd is not None:
            return self
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            timeout = server.timeout_s   # socket timeout: a client that stalls is dropped

            def log_message(self, *args) -> None:  # keep notebook output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _loopback_only(self) -> bool:
                if not _is_loopback(self.client_address[0]):
                    self._send(403, {"error": "only loopback clients are served"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._loopback_only():
                    return
                if self.path == "/health":
                    self._send(200, {"status": "ok", "requests_served": server.requests_served})
                else:
                    self._send(404, {"error": f"no such endpoint {self.path}; use POST /generate or GET /health"})

            def do_POST(self) -> None:
                if not self._loopback_only():
                    return
                if self.path != "/generate":
                    self._send(404, {"error": f"no such endpoint {self.path}; use POST /generate"})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    length = -1
                if length <= 0 or length > server.max_body_bytes:
                    self._send(413 if length > 0 else 411,
                               {"error": f"the request body must be 1 to {server.max_body_bytes} bytes of JSON"})
                    return
                try:
                    payload = json.loads(self.rfile.read(length))
                    if not isinstance(payload, dict):
                        raise ValueError("the JSON body must be an object")
                except (ValueError, UnicodeDecodeError) as err:
                    self._send(400, {"error": f"bad JSON: {err}"})
                    return
                arrived = time.perf_counter()
                with server._lock:
                    started = time.perf_counter()
                    try:
                        result = server.handler(payload)
                        status = 200
                    except ValueError as err:        # CourseError is a ValueError: bad input
                        result, status = {"error": str(err)}, 400
                    except Exception as err:         # noqa: BLE001 - report, keep serving
                        result, status = {"error": f"{type(err).__name__}: {err}"}, 500
                    finished = time.perf_counter()
                with server._count_lock:
                    server.requests_served += 1
                result = dict(result)
                result.update(queued_s=started - arrived, handler_s=finished - started)
                self._send(status, result)

        try:
            self._httpd = _Server((self.host, self.port), RequestHandler)
        except OSError as err:  # issue 20: a busy port is a message, not an OSError traceback
            raise CourseError(f"cannot listen on {self.host}:{self.port} ({err.strerror or err}): the port is "
                              "busy (another server, perhaps from an earlier cell: stop() it) - or use port=0 "
                              "for any free port") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slmcourse-server", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice, and from the lifetime timer)."""
        httpd, self._httpd = self._httpd, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never send loopback traffic via a proxy


def request(url: str, payload: dict | None = None, timeout_s: float = 30.0) -> tuple[int, dict, float]:
    """POST `payload` as JSON to `url` (GET when payload is None); returns (status, JSON reply, seconds).

    Only loopback addresses are allowed. A reply with an error status is returned, not raised.
    """
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise CourseError(f"this client only talks to the local teaching server (http://127.0.0.1:...), not {url!r}")
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with _OPENER.open(req, timeout=timeout_s) as reply:
            status, body = reply.status, reply.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:  # issue 20: no server there, or it timed out
        reason = getattr(err, "reason", err)
        raise CourseError(f"no answer from {url} ({reason}): is the server started (server.start() or "
                          f"`with ModelServer(...)`) and is the port right?") from None
    seconds = time.perf_counter() - start
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        decoded = {"error": body.decode(errors="replace")}
    return status, decoded, seconds


# ---------------------------------------------------------------------------------------------
# A handler for a causal language model
# ---------------------------------------------------------------------------------------------
def generation_handler(model: Any, tokenizer: Any, max_new_tokens: int = 64, max_prompt_tokens: int = 512) -> Handler:
    """A handler: {"prompt": str, "max_new_tokens": int, "chat": bool} -> {"text", "new_tokens", "prompt_tokens"}.

    Greedy decoding (same prompt, same answer). Limits are enforced and reported as bad input.
    With "chat": true the prompt is wrapped in the tokenizer's chat template (instruction-tuned models).
    """
    import torch

    def handle(payload: dict) -> dict:
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise CourseError('the request needs a non-empty "prompt" string')
        wanted = payload.get("max_new_tokens", 16)
        if not isinstance(wanted, int) or isinstance(wanted, bool) or not 1 <= wanted <= max_new_tokens:
            raise CourseError(f'"max_new_tokens" must be a whole number from 1 to {max_new_tokens}, got {wanted!r}')
        if payload.get("chat"):
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
        if ids.shape[1] > max_prompt_tokens:
            raise CourseError(f"the prompt has {ids.shape[1]} tokens; this server accepts at most {max_prompt_tokens}")
        device = next(model.parameters()).device
        ids = ids.to(device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=wanted,
                                 do_sample=False, pad_token_id=pad)
        new = out[0, ids.shape[1]:]
        return {"text": tokenizer.decode(new, skip_special_tokens=True), "new_tokens": int(new.numel()),
                "prompt_tokens": int(ids.shape[1])}

    return handle


# ---------------------------------------------------------------------------------------------
# Export: the same model as an ONNX graph, run by ONNX Runtime
# ---------------------------------------------------------------------------------------------
def export_onnx(model: Any, path: str, example_ids: Any, opset: int = 17) -> Path:
    """Export a causal LM's forward pass (input_ids, attention_mask -> logits) to ONNX.

    Uses PyTorch's TorchScript-based exporter (`dynamo=False`: the newer exporter needs the
    `onnxscript` package). Batch and sequence length stay dynamic. The graph is exported without its
    weights, which are then attached one tensor at a time as ONNX *external data* in `<path>.data`:
    exporting a 135M-parameter model with its weights inside the protobuf needs about 1.6 GB of extra
    memory (the weights are copied twice), more than a 2 GB notebook can spare. Returns the .onnx path.
    """
    import warnings
    from pathlib import Path

    import onnx
    import torch

    if not isinstance(model, torch.nn.Module):
        raise CourseError("export_onnx needs a torch.nn.Module (a transformers causal LM)")
    if not isinstance(example_ids, torch.Tensor) or example_ids.dim() != 2:
        raise CourseError("example_ids must be a (batch, length) tensor of token ids")

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.m = inner

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = LogitsOnly(model).eval()
    cpu = torch.device("cpu")
    if next(model.parameters()).device != cpu:
        raise CourseError("export from a model on the CPU (model.to('cpu')); ONNX Runtime runs it on the CPU here")
    example_ids = example_ids.to(cpu)
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               "logits": {0: "batch", 1: "sequence"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(wrapper, (example_ids, torch.ones_like(example_ids)), str(path), dynamo=False,
                          export_params=False, keep_initializers_as_inputs=True, do_constant_folding=False,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes=dynamic, opset_version=opset)
    graph_model = onnx.load(str(path))
    tensors = dict(wrapper.named_parameters())
    tensors.update(dict(wrapper.named_buffers()))
    dtypes = {torch.float32: onnx.TensorProto.FLOAT, torch.float16: onnx.TensorProto.FLOAT16,
              torch.bfloat16: onnx.TensorProto.BFLOAT16, torch.int64: onnx.TensorProto.INT64}
    data_name = path.name + ".data"
    keep, offset = [], 0
    with open(path.parent / data_name, "wb") as data:
        for graph_input in graph_model.graph.input:
            if graph_input.name in ("input_ids", "attention_mask"):
                keep.append(graph_input)
                continue
            t = tensors[graph_input.name].detach().contiguous()
            raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
            data.write(raw)
            proto = onnx.TensorProto(name=graph_input.name, data_type=dtypes[t.dtype], dims=list(t.shape))
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = proto.external_data.add()
                entry.key, entry.value = key, value
            proto.data_location = onnx.TensorProto.EXTERNAL
            graph_model.graph.initializer.append(proto)
            offset += len(raw)
    del graph_model.graph.input[:]
    graph_model.graph.input.extend(keep)
    onnx.save(graph_model, str(path))
    return path


class OnnxCausalLM:
    """An exported model run by ONNX Runtime on the CPU: `logits(input_ids)` like the PyTorch model."""

    def __init__(self, path: str, threads: int | None = None):
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3      # errors only
        if not Path(str(path)).is_file():
            raise CourseError(f"no ONNX file at {path!r}: export one first with export_onnx(model, path, example_ids)")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - issue 20: ONNX Runtime's own exception types, as a message
            raise CourseError(f"ONNX Runtime cannot load {path!r}: {str(err)[:200]}") from None

    def logits(self, input_ids: Any) -> Any:
        import numpy as np
        import torch

        ids = input_ids.cpu().numpy().astype(np.int64)
        out = self.session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        return torch.from_numpy(out)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
