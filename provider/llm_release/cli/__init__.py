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
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
