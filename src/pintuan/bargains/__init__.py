"""Bargains (砍价): friends help cut the price (see ``domain/bargains.py``)."""
