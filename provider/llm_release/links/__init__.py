"""Airflow links of the LLM release provider."""
