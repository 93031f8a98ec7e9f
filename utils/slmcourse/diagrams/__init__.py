"""Concept diagrams drawn in code: the picture before the maths, one per lesson.

Each function returns a matplotlib Figure made of boxes and arrows (shared primitives in `_draw`),
so it renders the same in JupyterLab, Colab, on GitHub and under nbval, and tests/test_diagrams.py
renders every name listed in `__all__`. Lessons call them as `diagrams.<name>()`.
"""
from __future__ import annotations

__all__: list[str] = []

# One import line per diagram module (keep one line each, sorted by lesson):
# DIAGRAMS-BEGIN
from .model_forms import model_forms; __all__.append("model_forms")
from .decoder_block import decoder_block; __all__.append("decoder_block")
from .decoder_block import three_families; __all__.append("three_families")
from .generation_loop import generation_loop; __all__.append("generation_loop")
from .gqa import gqa_grouping; __all__.append("gqa_grouping")
from .sliding_window import sliding_window_receptive_field; __all__.append("sliding_window_receptive_field")
from .rope import rope_rotation; __all__.append("rope_rotation")
from .distillation import distillation_pipeline; __all__.append("distillation_pipeline")
from .quantization import quantization_grid; __all__.append("quantization_grid")
from .lora import lora_update; __all__.append("lora_update")
from .prefill_decode import prefill_decode_timeline; __all__.append("prefill_decode_timeline")
from .decision_flow import decision_flow; __all__.append("decision_flow")
from .newest import newest_ideas; __all__.append("newest_ideas")
from .evaluation import evaluation_pipeline; __all__.append("evaluation_pipeline")
from .speculative import speculative_round; __all__.append("speculative_round")
# DIAGRAMS-END
