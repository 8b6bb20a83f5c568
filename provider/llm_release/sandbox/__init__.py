"""Local serving environment: model servers, gateway with weighted routing and metrics, replayer."""
