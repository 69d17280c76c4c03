import os

import torch as th

# The networks in the tests are tiny: one thread is faster, and keeps parallel test processes
# (and the example scripts they start) from fighting over the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
th.set_num_threads(1)
