"""``python -m react``: the ``react`` command (react/cli.py)."""

from react.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
