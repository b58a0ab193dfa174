"""Never ends: ignores SIGTERM, and starts a child in its own session that does the same."""

import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.2)"
subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
print("LOOP: started", flush=True)
while True:
    time.sleep(0.2)
