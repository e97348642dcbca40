"""Stripe connector: invoice target and payment feed (stripe-python).

Only this package imports ``stripe``. ``amounts`` converts canonical Decimals to Stripe's
integer amounts and back.
"""
