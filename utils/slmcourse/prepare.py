"""`python -m slmcourse.prepare`: get the bundled models ready (once) - what `make` runs."""
from __future__ import annotations

import sys

from .bundled import prepare_all
from .errors import ModelFileError


def main() -> int:
    try:
        report = prepare_all(progress=True)
    except ModelFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, info in report.items():
        state = f"converted in {info['seconds']:.0f} s" if info["converted"] else "already prepared, verified"
        print(f"{name:>18}: {state} -> {info['folder']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
