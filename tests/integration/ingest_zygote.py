"""Run by test_crash_safety.py: imports cardrag once, then runs `cardrag ingest` in a forked
child per line read on stdin, so a kill test pays for the imports (seconds of CPU) once
instead of once per kill. The child runs the real CLI in a fresh process that has never
opened Chroma; the test kills it with SIGKILL.

Protocol: prints `ready`; per stdin line (`NAME=value` environment settings for the child,
then the CLI arguments) prints `pid <n>`, then, when the child has ended, `exit <code>` on
stdout and `--- done` on stderr (after the child's own output).
"""

import os
import sys
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


print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        run_child(line.split())
    print(f"pid {pid}", flush=True)
    _, status = os.waitpid(pid, 0)
    print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
    print("--- done", file=sys.stderr, flush=True)
