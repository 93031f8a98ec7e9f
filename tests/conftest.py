"""Shared test set-up: offline by default, quiet transformers, a temporary cache for tests that convert."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
