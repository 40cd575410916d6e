"""Child process of the kill -9 durability test (not a test module).

Usage: python durability_child.py DB THREADS. Opens an SQLiteStore with its
default durability and creates keys from THREADS threads forever, printing
"<revision> <key>" for each write *after* it was acknowledged. The parent
kills it with SIGKILL mid-load and checks that every printed write survived.
"""

from __future__ import annotations

import sys
import threading

from netlab.master.store import SQLiteStore


def main() -> None:
    db, nthreads = sys.argv[1], int(sys.argv[2])
    store = SQLiteStore(db)
    out = threading.Lock()

    def writer(t: int) -> None:
        i = 0
        while True:
            key = f"/registry/pods/default/t{t}-{i}"
            kv = store.create(key, b'{"kind":"Pod","n":%d}' % i)
            with out:
                # One write(2) per line: a pipe write this small is atomic, so
                # a kill never leaves half a line.
                sys.stdout.write(f"{kv.mod_revision} {key}\n")
                sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
