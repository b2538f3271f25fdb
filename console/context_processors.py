from agents.selectors import user_is_admin


def console(request) -> dict:
    """``console_is_admin`` for the navigation; lazy, so pages that do not show it pay no query."""
    user = getattr(request, "user", None)
    return {"console_is_admin": (lambda: user is not None and user_is_admin(user))}
