"""Audits of threats beyond evasion: poisoned training data and backdoors (``poisoning``)."""
