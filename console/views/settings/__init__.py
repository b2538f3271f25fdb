"""The admins' settings pages: channels, teams and agents, canned responses (Django admin for everything else)."""
