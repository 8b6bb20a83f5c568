"""``llm-release demo``: run the local stack with the example release DAG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="start sandbox, MLflow and Airflow; trigger a release")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout holding dags/ and plugins/")
    parser.add_argument("--home", type=Path, default=Path(".demo"), help="state directory (default .demo)")
    parser.add_argument("--airflow-port", type=int, default=8080)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--gateway-port", type=int, default=8700)
    parser.add_argument("--stable-port", type=int, default=8701)
    parser.add_argument("--candidate-port", type=int, default=8702)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.002,
        help="policy hours x 3600 x this = seconds (0.002: the 48 h plan in ~6 min)",
    )
    parser.add_argument(
        "--replay-rate", type=float, default=60.0,
        help="replayed queries per second (the 2 %% canary sees 2 %% of them: evidence takes traffic)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from llm_release.localstack.demo import run_demo
    from llm_release.localstack.seed import SandboxPorts

    return run_demo(
        repo=args.repo.resolve(),
        home=args.home.resolve(),
        airflow_port=args.airflow_port,
        mlflow_port=args.mlflow_port,
        ports=SandboxPorts(args.gateway_port, args.stable_port, args.candidate_port),
        time_scale=args.time_scale,
        replay_rate=args.replay_rate,
    )
