"""Edit modules, one per family of rules. Every module here is imported by
:func:`claimscrub.engine.load_rules`; its edits register themselves with ``@register``."""
