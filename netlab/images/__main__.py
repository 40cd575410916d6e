"""``python -m netlab.images PROGRAM [ARGS]``: how a container runs a built-in image.

A built-in image's process is PID 1 of its PID namespace, and the kernel drops a
signal sent to a namespace's init from outside while the signal's disposition is
still the default: a Python program only installs its handler after its imports,
and under a burst of pod starts on two cores that takes seconds. A delete in that
window used to be ignored, so the pod stayed Terminating for its whole grace period.
So the runtime waits, before it sends SIGTERM, until the process catches it
(``SigCgt`` in ``/proc/PID/status``; ``ContainerSpec.stop_signals_blocked`` marks the
programs that need this), and this launcher, the first Python code the process runs,
installs a handler that ends the process at once, before any program's imports (the
program has not started serving, so there is nothing to drain). The program's own
graceful handler replaces it once the program is ready. A real image's entrypoint in
Go or C handles the signal within milliseconds; this makes netlab's images behave the
same.

Host programs (a ``command`` that is not an image's entrypoint) do not go through
here: they run as PID 1 with their own signal handling, exactly as the same program
would in a real container.
"""

import os
import signal
import sys

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# PROGRAM -> the module whose main(argv) runs it; kept literal so that nothing is
# imported before the handler is in place.
PROGRAMS = {
    "echo": "netlab.images.echo",
    "stress": "netlab.images.stress",
    "agnhost": "netlab.images.agnhost",
}


def _stop_before_ready(signum: int, _frame: object) -> None:
    # os._exit: nothing to flush or close yet, and no import may run after a stop.
    os._exit(0)


def main(argv: list[str]) -> int:
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_before_ready)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if not argv or argv[0] not in PROGRAMS:
        sys.stderr.write(f"usage: python -m netlab.images {'|'.join(PROGRAMS)} [ARGS]\n")
        return 2
    import importlib

    program = importlib.import_module(PROGRAMS[argv[0]])
    sys.argv = [argv[0], *argv[1:]]
    return int(program.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
