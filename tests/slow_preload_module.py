"""A fork server preload that takes a while: appends "start end" (wall clock) of its import to the
file named by EDGEBENCH_TEST_PRELOAD_LOG, for tests that check fork servers import at once."""
import os
import time

_start = time.time()
time.sleep(float(os.environ.get("EDGEBENCH_TEST_PRELOAD_SLEEP", "1.5")))
with open(os.environ["EDGEBENCH_TEST_PRELOAD_LOG"], "a", encoding="utf-8") as _fh:
    _fh.write(f"{_start} {time.time()}\n")
