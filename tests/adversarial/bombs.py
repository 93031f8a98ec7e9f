"""A fork bomb and a memory bomb, then the honest solution: the sandbox bounds both, the rest is graded."""
# %% gqa
import os
import time

children = 0
try:
    for _ in range(1000):                     # a fork bomb, capped in case no limit applies (children sleep)
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError:
    pass
hoard, allocated = [], 0
try:
    while allocated < 64 * 1024 ** 3:        # a memory bomb: 64 MiB at a time, touched
        hoard.append(bytearray(b"x" * (64 * 1024 ** 2)))
        allocated += 64 * 1024 ** 2
except MemoryError:
    pass
del hoard
with open("bombs-report.txt", "w") as fh:
    fh.write(f"children {children} allocated_mib {allocated // 1024 ** 2}\n")
__HONEST__
# %% alibi
while True:                                   # endless output: the cell's timeout stops it
    print("spam " * 200)
