"""The open platform: outside apps, their review, and what they may do for whom."""
