"""`make bench`: runs every bench module and prints `bench NAME: VALUE UNIT [(RATIOx vs BASELINE)]`.

Each module in this folder named `bench_*.py` exposes `main()`; they run in name order.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    only = set(argv)
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    failed = 0
    for name in names:
        short = name.removeprefix("bench_")
        if only and short not in only:
            continue
        print(f"# {short}", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # one broken bench must not hide the others
            failed += 1
            print(f"# {short} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"# {short} took {time.perf_counter() - t0:.1f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
