"""Run by test_crash_safety.py: imports cardrag once, then runs `cardrag ingest` in a forked
child per line read on stdin, so a kill test pays for the imports (seconds of CPU) once
instead of once per kill. The child runs the real CLI in a fresh process that has never
opened Chroma; the test kills it with SIGKILL.

Protocol: prints `ready`. For each stdin line (`NAME=value` environment settings for the
child, then the CLI arguments) it forks the child and prints `pid <n>`. When the child ends
it prints `--- ended` on stderr (after the child's own output). It then reads one more
line, `kill` (SIGKILL the child now, if it still runs) or `wait`, and prints `exit <code>`
on stdout once the child is reaped. The child is reaped only after that line, so the pid
the kill goes to cannot belong to another process.
"""

import os
import signal
import sys
import threading
import traceback

import rag.cards  # noqa: F401  (imported here so that children start with everything loaded)
import rag.components  # noqa: F401
from ingest.cli import app


def run_child(words: list[str]) -> None:
    while words and "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        os.environ[name] = value
    code = 0
    try:
        app(words, prog_name="cardrag")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no atexit handlers: they belong to the parent


def announce_end(pid: int) -> None:
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
    print("--- ended", file=sys.stderr, flush=True)


print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        run_child(line.split())
    print(f"pid {pid}", flush=True)
    watcher = threading.Thread(target=announce_end, args=(pid,))
    watcher.start()
    if sys.stdin.readline().strip() == "kill":
        os.kill(pid, signal.SIGKILL)  # harmless if it has ended: a zombie until reaped
    watcher.join()
    _, status = os.waitpid(pid, 0)
    print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
