"""The course's ipywidgets explorers: one module per lesson topic.

Each explorer only wires controls to a plain, unit-tested function of the helper package and shows
its result; input that makes no sense is answered with a message (see `_common.show_error`).
"""
