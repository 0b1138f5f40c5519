"""Voices as resources: enrolment from a reference clip, offline voice matching (Kokoro style
fitting), and the routes that serve them. See ``service.py`` for the storage layout."""
