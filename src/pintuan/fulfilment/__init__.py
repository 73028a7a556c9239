"""Fulfilment of goods: the shopper's address book, the delivery address of each seat, shipping
by the merchant and receipt by the shopper (or by the worker after the waiting time)."""
