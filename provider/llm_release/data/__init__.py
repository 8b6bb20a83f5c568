"""Shipped data: knowledge base, evaluation set, adversarial probes, replay traffic."""
