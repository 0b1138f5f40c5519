"""Authentication, scopes, tenants and API keys (see guard.py for the request path)."""
