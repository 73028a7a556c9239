"""Pickup points led by community team leaders, and the pickups of pickup deals' seats."""
