"""Baseline for benchmarks/parse_time.py: the smallest useful DAG file (one task)."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="minimal_one_task", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    EmptyOperator(task_id="only_task")
