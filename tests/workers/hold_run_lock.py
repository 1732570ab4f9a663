"""Holds a run directory's lock as `xstilts run` does, for tests/test_run_safety.py: prints "held" once it
has the lock, then sleeps until killed (SIGKILL leaves its holder record behind, as a crash would).

Usage: python hold_run_lock.py RUN_DIR
"""

import sys
import time

from xstilts.pipeline.run_lock import run_lock

with run_lock(sys.argv[1], "xstilts run"):
    print("held", flush=True)
    time.sleep(600)
