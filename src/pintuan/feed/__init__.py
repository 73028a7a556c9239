"""The aggregated feed: one ranked slate of deals and almost full teams across every vertical
and partner offer, each decision logged with its propensity so policies can be judged offline."""
