"""What every page needs, whoever it is for: CSRF, the session, languages, rendering, security
headers, error pages, once-only forms, the services, and queries both audiences read."""
