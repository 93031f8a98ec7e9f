"""slmcourse - the helper package of "Small Language Models - a hands-on course".

Layers, bottom to top:
  pure functions   catalogue, memory (calculators), attention maths, ...
  models           full_size / scaled_down / load, bundled (offline models), env (device, network)
  on top           plots, widgets (the explorers)
Notebooks import from here; nothing here imports from a notebook.
"""
from .catalogue import ModelCard, attention_kind, get as model_card, names as model_names
from .env import environment_report, is_online, pick_device
from .errors import CourseError, ModelFileError, OfflineError
from .models import count_parameters, full_size, load, parameter_breakdown, scaled_down

__version__ = "0.1.0"

__all__ = [
    "CourseError", "ModelCard", "ModelFileError", "OfflineError", "attention_kind", "count_parameters",
    "environment_report", "full_size", "is_online", "load", "model_card", "model_names",
    "parameter_breakdown", "pick_device", "scaled_down", "__version__",
]
