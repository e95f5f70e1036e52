"""Run a command; print its stdout, wall time and own peak memory as one JSON document.

Timing here, around the child alone, keeps this wrapper's start-up out of the numbers.
"""

import json
import os
import subprocess
import sys
import time

started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(code)
print(json.dumps({"stdout": out.decode(), "seconds": elapsed, "peak_rss_kb": usage.ru_maxrss}))
