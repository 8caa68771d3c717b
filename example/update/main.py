"""Example program supervised by Python OTA Update (version 2).

It prints the message of message.txt and, new in this version, the note in
data/extra.txt.
"""
import pathlib
import signal
import sys
import time

VERSION = "v2"
INTERVAL_SECONDS = 2


def stop(signum, frame):
    print(f"[{VERSION}] received signal {signum}, exiting", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)

here = pathlib.Path(__file__).parent
while True:
    message = (here / "message.txt").read_text(encoding="utf-8").strip()
    extra = (here / "data" / "extra.txt").read_text(encoding="utf-8").strip()
    print(f"[{VERSION}] message: {message} | extra: {extra}", flush=True)
    time.sleep(INTERVAL_SECONDS)
