"""Example program supervised by Python OTA Update (version 1).

Every few seconds it prints the message in message.txt. Copy the files of
example/update/ into deposit/ to replace it with version 2.
"""
import pathlib
import signal
import sys
import time

VERSION = "v1"
INTERVAL_SECONDS = 2


def stop(signum, frame):
    # A graceful stop: finish the current line and leave.
    print(f"[{VERSION}] received signal {signum}, exiting", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)

here = pathlib.Path(__file__).parent
while True:
    message = (here / "message.txt").read_text(encoding="utf-8").strip()
    print(f"[{VERSION}] message: {message}", flush=True)
    time.sleep(INTERVAL_SECONDS)
