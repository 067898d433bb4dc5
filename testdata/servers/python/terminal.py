"""Runs a command with its stdin and stderr on a pseudo-terminal (as a person at a terminal
would), answering each prompt that ends with `[y/N] `: with the answer of the first
[needle, answer] pair whose needle the prompt's line holds, else "n".

usage: terminal.py '[[NEEDLE, ANSWER], ...]' -- COMMAND ARGS...
prints one JSON object: {"code": exit status, "terminal": what the terminal showed,
"stdout": the command's stdout}. A test fixture for mcplock's interactive review.
"""

import json
import os
import pty
import select
import subprocess
import sys
import time


def main() -> None:
    answers = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    master, slave = pty.openpty()
    child = subprocess.Popen(
        argv, stdin=slave, stdout=subprocess.PIPE, stderr=slave, close_fds=True
    )
    os.close(slave)
    shown = b""
    given = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if master in ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
            while shown.count(b"[y/N] ") > given:
                line = shown.split(b"[y/N] ")[given].splitlines()[-1].decode(errors="replace")
                answer = next((a for needle, a in answers if needle in line), "n")
                os.write(master, (answer + "\n").encode())
                given += 1
        elif child.poll() is not None:
            break
    else:
        child.kill()
    stdout = child.stdout.read() if child.stdout else b""
    child.wait()
    print(
        json.dumps(
            {
                "code": child.returncode,
                "terminal": shown.decode(errors="replace"),
                "stdout": stdout.decode(errors="replace"),
            }
        )
    )


if __name__ == "__main__":
    main()
