"""airflow-provider-llm-release."""
__version__ = "0.1.0"
