"""The webhook receiver, health, metrics and ops pages served by `billsync serve`."""
