"""Where the course lives and how a notebook launches elsewhere (Colab, Binder).

REPOSITORY is the one place the course's address is written; the README badges and the first cells
of every notebook are generated from it by `python utils/stamp_notebooks.py` (a fork changes this
line and re-runs that command).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPOSITORY = "https://github.com/slm-course/small-language-models"
BRANCH = "main"
# The tagged release the Colab cell installs (not `main`, which moves): a Colab learner runs a known course
# version. Tag each release `v<slmcourse.__version__>` and push the tag (docs/students_submitting.md).
RELEASE = "v0.1.0"
ROOT = Path(__file__).resolve().parents[2]

# Colab already has torch, transformers, matplotlib and ipywidgets: install only what it lacks.
COLAB_PACKAGES = ("gguf", "accelerate")


def _owner_repo() -> str:
    return REPOSITORY.rstrip("/").split("github.com/")[1]


def colab_url(notebook: str) -> str:
    """'Open in Colab' address of a notebook given by its path in the repository."""
    _check_notebook(notebook)
    return f"https://colab.research.google.com/github/{_owner_repo()}/blob/{BRANCH}/{notebook}"


def _check_notebook(notebook) -> None:
    from .errors import CourseError

    if not isinstance(notebook, str) or not notebook.strip().endswith(".ipynb"):
        raise CourseError(f"notebook must be a notebook's path in the repository such as "
                          f"'course/00_setup.ipynb', got {notebook!r}")


def binder_url(notebook: str = "course/00_setup.ipynb") -> str:
    _check_notebook(notebook)
    return f"https://mybinder.org/v2/gh/{_owner_repo()}/{BRANCH}?urlpath=lab/tree/{notebook}"


def colab_badge(notebook: str) -> str:
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook)})")


def binder_badge(notebook: str = "course/00_setup.ipynb") -> str:
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook)})"


def pinned(requirements: Path = ROOT / "requirements.txt") -> tuple[dict[str, str], dict[str, str]]:
    """({package: version} installed normally, {package: version} installed with --no-deps).

    Parsed by utils/install_env.py, the installer `make` runs, so both read the pinned file the same way.
    Only meaningful in a checkout of the repository (requirements.txt is not part of the package).
    """
    if not Path(requirements).is_file():
        from .errors import CourseError

        raise CourseError(f"pinned: requirements must be the path of a requirements file, got {requirements!r}")
    requirements = Path(requirements)
    spec = importlib.util.spec_from_file_location("install_env", ROOT / "utils" / "install_env.py")
    install_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install_env)
    normal, no_deps = install_env.read_requirements(requirements)
    return (dict(line.split("==", 1) for line in normal), dict(line.split("==", 1) for line in no_deps))


def colab_install_commands(source: str | None = None) -> list[list[str]]:
    """The pip commands the first cell runs on Colab (`source`: where slmcourse is installed from)."""
    normal, no_deps = pinned()
    package = source or f"slmcourse @ git+{REPOSITORY}@{RELEASE}"
    first = ["pip", "install", "-q", package] + [f"{n}=={normal[n]}" for n in COLAB_PACKAGES]
    second = ["pip", "install", "-q", "--no-deps"] + [f"{n}=={v}" for n, v in no_deps.items()]
    return [first, second]


def colab_cell_source(source: str | None = None) -> str:
    """Source of every notebook's first code cell: installs the course on Colab, does nothing elsewhere.

    `source` as in `colab_install_commands` (tests/test_colab.py installs from this checkout).
    """
    commands = ",\n        ".join(repr(cmd) for cmd in colab_install_commands(source))
    return (
        "# On Google Colab this installs the course's helper package and its bundled models;\n"
        "# anywhere else (make lab, Binder, JupyterHub) it does nothing.\n"
        "import subprocess, sys\n"
        "if \"google.colab\" in sys.modules:\n"
        "    for command in [\n"
        f"        {commands},\n"
        "    ]:\n"
        "        subprocess.run([sys.executable, \"-m\", *command], check=True)\n"
        "    from google.colab import output\n"
        "    output.enable_custom_widget_manager()  # lets the ipywidgets explorers run on Colab"
    )


# The syllabus: (notebook, topic, minutes, explorer). The README's table is generated from it.
SYLLABUS = (
    ("00_setup", "Setup: environment, device, the bundled models, a first generation and embedding", 30, "—"),
    ("01_what_is_an_slm", "What is a small language model? Catalogue, parameter counting, memory", 60, "Will it fit?"),
    ("02_architectures", "Loading each architecture type: decoder, encoder, encoder-decoder", 70, "Architecture"),
    ("03_tokens_and_generation", "Tokens and generation: tokenizers, sampling loop, chat templates, KV cache", 80, "Decoding"),
    ("04_attention_gqa", "Attention I: multi-head, multi-query, grouped-query", 75, "KV cache"),
    ("05_attention_sliding_window", "Attention II: sliding-window attention, Gemma 3's local/global layers", 60, "Masks"),
    ("06_attention_positions", "Attention III: learned positions, RoPE, ALiBi, length extrapolation", 65, "Positions"),
    ("07_newest_architectures", "The newest small models: mixture of experts, latent attention, hybrids, 2024-26 catalogue", 75, "Architecture features"),
    ("08_distillation", "Knowledge distillation: soft targets, logit distillation, the DistilBERT recipe", 75, "Temperature"),
    ("09_compression", "Compression: quantization from scratch, GGUF formats, pruning", 75, "Quantization"),
    ("10_evaluation", "Evaluating small models: log-likelihood and exact match, intervals, a size ladder", 75, "Evaluation"),
    ("11_fine_tuning", "Adapting a model to a domain: prompting and RAG first, chat-format LoRA SFT, DPO, QLoRA", 120, "LoRA"),
    ("12_deployment", "Deployment: latency, throughput, precision, ONNX, a local service, energy", 70, "Deployment planner"),
    ("13_faster_decoding", "Faster and stricter decoding: speculative decoding, KV-cache quantization, prefix caching, JSON constraints, a real runtime", 80, "Speculative decoding"),
    ("14_choosing_and_future", "Choosing an SLM, and where the field is going", 50, "Decision tool"),
)


def syllabus_markdown() -> str:
    """The README's syllabus table, with an Open-in-Colab badge per notebook."""
    rows = ["| # | notebook | topic | time | explorer | open |", "| --- | --- | --- | --- | --- | --- |"]
    for name, topic, minutes, explorer in SYLLABUS:
        path = f"course/{name}.ipynb"
        rows.append(f"| {name[:2]} | [{name}]({path}) | {topic} | {minutes} min | {explorer} | {colab_badge(path)} |")
    return "\n".join(rows)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
