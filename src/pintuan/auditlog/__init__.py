"""The audit log: who stopped, paused, ended, approved or refused what, when, and why."""
