"""Vouchers of local-services deals: issue, redeem, undo, refund and expire (see
``domain/vouchers.py``)."""
