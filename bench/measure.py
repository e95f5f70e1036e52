"""Run a command; print its stdout, wall time, own peak memory and the CPU time the whole machine
spent meanwhile (client and servers alike: here they share the cores) as one JSON document.

Timing here, around the child alone, keeps this wrapper's start-up out of the numbers.
"""

import json
import os
import subprocess
import sys
import time

from measure_cpu import busy_seconds  # run as a script: its directory is on sys.path

busy = busy_seconds()
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - started
cpu = busy_seconds() - busy
code = os.waitstatus_to_exitcode(status)
# the measures of a run that exits non-zero too (`diff` exits 1 when environments differ); the exit
# code passes through, and the caller decides which codes are expected
print(json.dumps({"stdout": out.decode(), "seconds": elapsed, "peak_rss_kb": usage.ru_maxrss, "machine_cpu_s": cpu}))
sys.exit(code)
