"""Outside world behind small protocols: model endpoint, router, metrics, registry, audit, tickets."""
