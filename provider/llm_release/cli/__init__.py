"""The ``llm-release`` command line.

Each command family lives in its own module exposing ``add_parser(subparsers)``; the parser sets
``func`` on the namespace, which returns the process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from llm_release.cli import demo_command, policy_commands, sandbox_commands

    parser = argparse.ArgumentParser(prog="llm-release", description="LLM release pipeline tooling.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    policy_commands.add_parser(subparsers)
    sandbox_commands.add_parser(subparsers)
    demo_command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input ends as readable lines on stderr and exit code 1, never a traceback.

    Commands report their own errors; this is the net under them for what reaches it anyway: a file
    the reader refused (``InputError``), an invalid policy (``PolicyError``), a data file or a file
    system error (an unwritable ``--output``). Exit code 2 stays argparse's, for a wrong command line.
    """
    from llm_release.inputs import InputError
    from llm_release.policy import PolicyError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PolicyError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
    except InputError as exc:
        print(exc, file=sys.stderr)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"llm-release {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
