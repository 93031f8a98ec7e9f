"""Where the course runs: device choice, network reachability, and an environment report."""
from __future__ import annotations

import os
import platform
import socket
import threading
from importlib import metadata

import torch

HUB_HOST = "huggingface.co"


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple MPS, then CPU. `prefer` ("cpu", "cuda", "mps") overrides.

    The environment variable SLMCOURSE_DEVICE overrides too (e.g. to force the CPU on a GPU machine).
    """
    from .checks import device as _device

    if prefer is not None:
        return _device("prefer", prefer)
    if os.environ.get("SLMCOURSE_DEVICE", "").strip():
        return _device("SLMCOURSE_DEVICE", os.environ["SLMCOURSE_DEVICE"])
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def is_online(host: str = HUB_HOST, port: int = 443, timeout: float = 2.0) -> bool:
    """True if a TCP connection to the Hub opens within `timeout` seconds (never hangs longer).

    HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1) makes the answer False without trying.
    """
    from .checks import positive_number, whole_number
    from .errors import CourseError

    if not isinstance(host, str) or not host.strip():
        raise CourseError(f"host must be a host name such as 'huggingface.co', got {host!r}")
    whole_number("port", port, minimum=1, maximum=65535)
    timeout = positive_number("timeout", timeout, maximum=600)
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("", "0"):
        return False
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)  # DNS can hang on a closed network: never wait past the timeout
    return bool(result and result[0])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


REPORTED_PACKAGES = ("torch", "transformers", "accelerate", "gguf", "safetensors", "ipywidgets",
                     "matplotlib", "nbgrader", "slmcourse")


def environment_report(check_network: bool = True) -> dict[str, str]:
    """Versions, device and network state, as a dict of strings (for printing or for a bug report)."""
    report = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu cores": str(os.cpu_count()),
        "device": str(pick_device()),
    }
    report.update({name: _version(name) for name in REPORTED_PACKAGES})
    if check_network:
        report["hub reachable"] = "yes" if is_online() else "no (offline: the bundled models are used)"
    return report

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
