"""A local stand-in for the Stripe API (v1), faithful enough for unmodified stripe-python 16."""
