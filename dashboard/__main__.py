"""`python -m dashboard`: browse a saved snapshot (or the built-in Bookinfo sample) without a mesh.

The composition root serves the live UI (`meshscope up`); this entry point is for
incident snapshots, demos and UI work.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--snapshot", metavar="FILE", help="a saved UI or report snapshot (JSON)")
    what.add_argument("--sample", choices=["bookinfo"], help="the built-in Bookinfo incident sample")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need --token)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--token", default=os.environ.get("MESHSCOPE_TOKEN"),
                        help="access token (default $MESHSCOPE_TOKEN); required off loopback")
    args = parser.parse_args(argv)

    from dashboard.access import AccessError
    from dashboard.server import serve
    from dashboard.snapshot_source import SnapshotError, SnapshotSource

    try:
        if args.snapshot:
            source = SnapshotSource.from_file(args.snapshot)
        else:
            from dashboard.sample import bookinfo_snapshot
            source = SnapshotSource(bookinfo_snapshot(), origin="sample:bookinfo")
        serve(source, host=args.host, port=args.port, token=args.token)
    except (SnapshotError, AccessError) as exc:
        print(f"meshscope UI: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"meshscope UI: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
