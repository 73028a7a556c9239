"""Events out: signed webhooks to the endpoints apps subscribe, from the outbox, by the worker."""
