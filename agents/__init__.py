"""Who may act in the desk: agents (users with a profile), the teams they belong to, and API tokens.

A separate app because routing, SLAs, permissions and the console all depend on it while it depends on none of
them.
"""
