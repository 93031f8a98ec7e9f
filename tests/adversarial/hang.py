"""A kernel that ignores interrupts and never finishes: only the per-submission time limit stops it."""
# %% gqa
import signal
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    time.sleep(1)
