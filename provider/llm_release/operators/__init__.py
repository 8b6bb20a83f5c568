"""Airflow operators of the LLM release provider."""
