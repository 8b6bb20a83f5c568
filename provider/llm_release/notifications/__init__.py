"""Airflow notifications of the LLM release provider."""
