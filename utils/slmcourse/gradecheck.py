"""The graders' checks for the course's assignments: results that cannot lie, calls that cannot hide.

Hidden tests use this module instead of plain `assert x == y` / `torch.allclose`, because the code
they test is untrusted (the notebook of a student who may want marks without the work):

    assert_close(actual, expected, atol=..., rtol=..., what="...")
        `actual` must be exactly a torch.Tensor (no subclass), a Python float/int, or a list/tuple of
        them, of the expected dtype and shape; compared with `torch.allclose` / `math.isclose` as they
        were when this module was first imported, with PyTorch's `__torch_function__` overrides
        disabled. An object whose `__eq__` always answers True (nbgrader issue #1379) fails.
    assert_equal(actual, expected, what="...")
        the same, exact (`torch.equal`, or `==` on values of an exact built-in type).
    forbid(fn, *args, forbidden=[...], **kwargs) -> fn(*args, **kwargs)
        runs the graded call under `sys.setprofile` (and, for PyTorch operators, a dispatch mode) and
        raises `ForbiddenCall` if anything it executed - directly or through helpers, early-bound
        names, aliases or threads it starts - is one of the forbidden implementations: a module prefix
        ("slmcourse", "peft", "torch.ao"), a qualified name ("torch.nn.functional.cosine_similarity") or
        an ATen operator ("aten::scaled_dot_product" matches every operator whose name contains it).
    calls_made(fn, *args, **kwargs) -> (result, set of qualified names of what ran)

Everything the checks rely on (torch.allclose, torch.equal, torch.Tensor, type, isinstance,
sys.setprofile, ...) is captured when this module is first imported. The grading sandbox imports it
when the kernel starts (utils/sandbox.py), before any student code, so a student who later patches
`torch.allclose`, `torch.Tensor.__eq__` or `builtins.isinstance` changes nothing here. In-process
tampering with this module itself is made hard, not impossible: see docs/instructors.md's threat model.

Errors are AssertionError subclasses with a message naming the violation; utils/grade.py copies the
message of a `ForbiddenCall` / `NotARealResult` / `CheckerTampered` into grades.csv's notes.
"""
from __future__ import annotations

import builtins as _builtins
import math as _math
import sys as _sys
import threading as _threading

import torch as _torch

__all__ = ["ForbiddenCall", "NotARealResult", "CheckerTampered", "GradeCheckError", "assert_close",
           "assert_equal", "forbid", "calls_made", "checked", "intact", "reference", "seal"]


class GradeCheckError(AssertionError):
    """A hidden test found a submission gaming the grader."""


class ForbiddenCall(GradeCheckError):
    """The graded call ran an implementation the assignment forbids."""


class NotARealResult(GradeCheckError):
    """The result is not a genuine tensor / number of the expected kind."""


class CheckerTampered(GradeCheckError):
    """The grader's own checks were changed by the code under test."""


def _capture():
    """Everything the checks use, bound now (before student code) into one closure."""
    Tensor = _torch.Tensor
    Base = _torch._C.TensorBase            # a C type: its attributes cannot be patched
    dtype_of, shape_of = Base.dtype.__get__, Base.shape.__get__
    detach, double = Base.detach, Base.double
    allclose, equal = _torch.allclose, _torch.equal
    DisableTorchFunction = _torch._C.DisableTorchFunction
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:  # pragma: no cover - very old PyTorch
        TorchDispatchMode = None
    type_, isinstance_, len_, float_, int_, bool_, str_, repr_ = (type, isinstance, len, float, int, bool, str,
                                                                    repr)
    tuple_, list_, set_, zip_, getattr_, id_ = tuple, list, set, zip, getattr, id
    isclose, isfinite = _math.isclose, _math.isfinite
    setprofile, getprofile = _sys.setprofile, _sys.getprofile
    thread_setprofile = _threading.setprofile
    own = globals()
    numbers = (float, int)
    sequences = (list, tuple)
    import torch.nn.functional as F
    # C functions that implement a forbidden thing whatever name they are reached by
    aliases = {}
    for qualified, obj in (("torch.nn.functional.scaled_dot_product_attention", F.scaled_dot_product_attention),
                           ("torch.nn.functional.cosine_similarity", F.cosine_similarity),
                           ("torch.cosine_similarity", _torch.cosine_similarity),
                           ("torch.quantize_per_tensor", _torch.quantize_per_tensor),
                           ("torch.quantize_per_channel", _torch.quantize_per_channel),
                           ("torch.fake_quantize_per_tensor_affine", _torch.fake_quantize_per_tensor_affine),
                           ("torch.fake_quantize_per_channel_affine", _torch.fake_quantize_per_channel_affine)):
        aliases[id_(obj)] = qualified

    def _fail(cls, message):
        raise cls(message)

    def _real(x, what):
        t = type_(x)
        if t is Tensor:
            return "tensor"
        if t in numbers:
            return "number"
        if t in sequences:
            return "sequence"
        if t is bool_:
            return "number"
        _fail(NotARealResult, f"{what}: expected a torch.Tensor or a number, got an object of type "
                              f"{getattr_(t, '__qualname__', '?')}")

    def _compare(actual, expected, what, exact, atol, rtol):
        kind = _real(actual, what)
        want = _real(expected, what + " (expected value)")
        if kind == "sequence" or want == "sequence":
            if kind != want or len_(actual) != len_(expected):
                _fail(AssertionError, f"{what}: expected a sequence of {len_(expected)} values")
            for i, (a, e) in enumerate(zip_(actual, expected)):
                _compare(a, e, f"{what}[{i}]", exact, atol, rtol)
            return
        if want == "tensor":
            if kind != "tensor":
                _fail(NotARealResult, f"{what}: expected a torch.Tensor, got {type_(actual).__qualname__}")
            with DisableTorchFunction():
                if dtype_of(actual) != dtype_of(expected) and exact:
                    _fail(AssertionError, f"{what}: dtype {dtype_of(actual)}, expected "
                                          f"{dtype_of(expected)}")
                if tuple_(shape_of(actual)) != tuple_(shape_of(expected)):
                    _fail(AssertionError, f"{what}: shape {tuple_(shape_of(actual))}, expected "
                                          f"{tuple_(shape_of(expected))}")
                if exact:
                    ok = equal(actual, expected)
                else:
                    a = double(detach(actual))
                    e = double(detach(expected))
                    ok = allclose(a, e, rtol=rtol, atol=atol)
            if type_(ok) is not bool_ or not ok:
                _fail(AssertionError, f"{what}: values differ from the expected ones")
            return
        # a number is expected
        if kind != "number":
            _fail(NotARealResult, f"{what}: expected a number, got a {type_(actual).__qualname__}")
        a, e = float_(actual), float_(expected)
        if exact:
            ok = type_(actual) is type_(expected) and a == e if type_(expected) is int_ else a == e
        else:
            ok = isclose(a, e, rel_tol=rtol, abs_tol=atol) if isfinite(e) else a == e
        if ok is not True:
            _fail(AssertionError, f"{what}: got {repr_(a)}, expected {repr_(e)}")

    def assert_close(actual, expected, *, atol=1e-6, rtol=1e-5, what="result"):
        """`actual` is a genuine tensor/number (exact type) close to `expected`; AssertionError if not."""
        _compare(actual, expected, what, False, atol, rtol)

    def assert_equal(actual, expected, *, what="result"):
        """`actual` is a genuine tensor/number (exact type) equal to `expected`; AssertionError if not."""
        _compare(actual, expected, what, True, 0.0, 0.0)

    def _qualified(code, f_globals):
        module = f_globals.get("__name__") if type_(f_globals) is dict else None
        return f"{module or '?'}.{getattr_(code, 'co_qualname', code.co_name)}"

    def _c_name(func):
        known = aliases.get(id_(func))
        if known:
            return known
        module = getattr_(func, "__module__", None)
        if module is None:
            owner = getattr_(func, "__self__", None)
            module = getattr_(owner, "__name__", None) if type_(owner) is type_(_sys) else None
        name = getattr_(func, "__qualname__", None) or getattr_(func, "__name__", "?")
        return f"{module or '?'}.{name}" if type_(module) is str_ and type_(name) is str_ else "?"

    def calls_made(fn, *args, **kwargs):
        """(fn(*args, **kwargs), the set of qualified names of everything it ran, ATen ops as 'aten::...')."""
        seen = set_()

        def profiler(frame, event, arg):
            if frame.f_globals is own:
                return
            f = frame.f_back                    # what runs inside an operator already recorded as aten::...
            while f is not None:
                if f.f_code is dispatch_code:
                    return
                f = f.f_back
            if event == "call":
                seen.add(_qualified(frame.f_code, frame.f_globals))
            elif event == "c_call":
                seen.add(_c_name(arg))

        mode, dispatch_code = None, None
        if TorchDispatchMode is not None:
            class _Ops(TorchDispatchMode):
                def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                    seen.add("aten::" + str_(getattr_(func, "__name__", func)))
                    return func(*args, **(kwargs or {}))
            mode = _Ops()
            dispatch_code = _Ops.__torch_dispatch__.__code__
        else:
            dispatch_code = None
        previous = getprofile()
        thread_setprofile(profiler)
        setprofile(profiler)
        try:
            if mode is not None:
                with mode:
                    result = fn(*args, **kwargs)
            else:
                result = fn(*args, **kwargs)
        finally:
            still = getprofile()
            setprofile(previous)
            thread_setprofile(None)
        if still is not profiler:
            _fail(CheckerTampered, "the graded call switched off the grader's call profiler (sys.setprofile)")
        return result, seen

    def _matches(name, rule):
        if rule.startswith("aten::"):
            return name.startswith("aten::") and rule[6:] in name
        return name == rule or name.startswith(rule + ".")

    def forbid(fn, *args, forbidden=(), **kwargs):
        """fn(*args, **kwargs), after checking it ran none of `forbidden`; ForbiddenCall names what it ran."""
        result, seen = calls_made(fn, *args, **kwargs)
        hits = sorted(set_(n for n in seen for rule in forbidden if _matches(n, rule)),
                      key=lambda n: (n.rsplit(".", 1)[-1].startswith("_"), n))   # public names first
        if hits:
            fname = getattr_(fn, "__name__", "the function")
            _fail(ForbiddenCall, f"forbidden: {fname} uses {', '.join(hits[:3])}"
                                 + (f" (+{len_(hits) - 3} more)" if len_(hits) > 3 else "")
                                 + " - the assignment asks for your own implementation")
        return result

    if TorchDispatchMode is not None:
        # The first dispatch mode ever entered imports torch._dynamo (seconds; two minutes under a profiler):
        # do it now, before any student code and outside any timed call.
        class _Warm(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))
        with _Warm():
            _torch.zeros(1) + 0

    return assert_close, assert_equal, forbid, calls_made


assert_close, assert_equal, forbid, calls_made = _capture()


def _capture_references():
    """The course's reference functions the hidden tests compare with, as they are now (before student code).

    A copy of each function is kept (its original code, defaults and closure), so rebinding the module's
    attribute or assigning to `__code__` later does not change what the hidden tests compare with.
    """
    import importlib
    import inspect
    import types

    refs = {}
    for module_name in ("slmcourse.attention",):
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if type(obj) is types.FunctionType and obj.__module__ == module_name:
                # the function itself, not the argument gate wrapped around it (checks.typed): a copy of the
                # wrapper would still call the original through its closure, which student code can reach
                # (`__wrapped__`) and rewrite
                inner = inspect.unwrap(obj)
                copy = types.FunctionType(inner.__code__, inner.__globals__, inner.__name__, inner.__defaults__,
                                          inner.__closure__)
                copy.__kwdefaults__ = dict(inner.__kwdefaults__) if inner.__kwdefaults__ else None
                refs[f"{module_name}.{name}"] = copy

    def reference(qualified_name):
        """The reference function `qualified_name` ("slmcourse.attention.alibi_bias") as captured at import."""
        return refs[qualified_name]

    return reference


reference = _capture_references()
_ORIGINAL = (assert_close, assert_equal, forbid, calls_made, ForbiddenCall, NotARealResult, CheckerTampered,
             reference)


def intact() -> bool:
    """True when this module's checks are still the ones captured at import."""
    here = _sys.modules.get(__name__)
    return here is not None and all(getattr(here, n, None) is o for n, o in zip(
        ("assert_close", "assert_equal", "forbid", "calls_made", "ForbiddenCall", "NotARealResult",
         "CheckerTampered", "reference"), _ORIGINAL))


class _Sealed(type(_sys)):
    """This module's type once sealed: assigning or deleting its attributes raises (hidden tests rely on them)."""

    def __setattr__(self, name, value):
        raise AttributeError(f"slmcourse.gradecheck is sealed while grading: cannot set {name}")

    def __delattr__(self, name):
        raise AttributeError(f"slmcourse.gradecheck is sealed while grading: cannot delete {name}")


def seal() -> None:
    """Forbid plain assignments to this module's attributes (the grading kernel calls it at start)."""
    here = _sys.modules.get(__name__)
    if here is not None and type(here) is type(_sys):
        here.__class__ = _Sealed


def checked():
    """The checks as captured at first import, raising CheckerTampered if the module was altered.

    Hidden tests start with `close, equal, forbid, reference = gradecheck.checked()`.
    """
    if not intact():
        raise CheckerTampered("the grader's checks (slmcourse.gradecheck) were replaced by the code under test")
    return assert_close, assert_equal, forbid, reference


_builtins  # noqa: B018  (kept imported: a stable reference independent of the notebook's namespace)
