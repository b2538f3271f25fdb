from celery import shared_task

from tickets.services.routing import ticket_route, tickets_route


@shared_task(
    name="tickets.route_ticket",
    acks_late=True,
    max_retries=5,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
)
def route_ticket(ticket_id: int) -> None:
    ticket_route(ticket_id=ticket_id)


@shared_task(
    name="tickets.route_tickets",
    acks_late=True,
    max_retries=5,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
)
def route_tickets(ticket_ids: list[int]) -> None:
    """The new tickets of one batch import, routed together (``tickets_route``)."""
    tickets_route(ticket_ids=ticket_ids)
