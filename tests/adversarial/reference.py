"""Calls the course's reference implementation and PyTorch's attention instead of writing its own."""
# %% gqa
import threading
from slmcourse.attention import grouped_query_attention as _ref_gqa   # bound early: patching cannot see it


def grouped_query_attention(q, k, v, mask=None, bias=None):
    out = []

    def work():                                   # in another thread, where a profiler might not look
        try:
            out.append(_ref_gqa(q, k, v, mask=mask, bias=bias))
        except Exception as err:
            out.append(err)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]
# %% sliding_window
import sys as _sys
from slmcourse import attention as _a


def sliding_window_mask(seq_len, window):
    _sys.setprofile(None)              # switch off whatever profiler is watching
    return _a.sliding_window_mask(seq_len, window)
# %% alibi
from torch.nn.functional import scaled_dot_product_attention as _innocent   # an alias
import slmcourse as _s


def alibi_slopes(n_heads):
    _innocent(torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2))
    return _s.attention.alibi_slopes(n_heads)


def alibi_bias(n_heads, seq_len):
    return getattr(_s.attention, "alibi_" + "bias")(n_heads, seq_len)
