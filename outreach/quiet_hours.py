"""Quiet hours: the night in the customer's own time zone, when a message that can wait (a survey) waits."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings


def customer_zone(time_zone: str) -> ZoneInfo:
    """The customer's IANA zone, or the desk's TIME_ZONE when they have none or an unknown one."""
    for name in (time_zone, settings.TIME_ZONE):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_hours_end(*, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When quiet hours end if ``now`` falls inside them in ``zone`` (as an aware UTC datetime), else None.

    Quiet hours run from ``OUTREACH_QUIET_HOURS_START`` to ``OUTREACH_QUIET_HOURS_END`` o'clock local time (21 to 8
    by default), across midnight. The end is that wall-clock hour on the right local day, so a night that a
    daylight-saving change makes an hour longer or shorter still ends at 08:00 on the clock."""
    start_hour = settings.HELPDESK["OUTREACH_QUIET_HOURS_START"]
    end_hour = settings.HELPDESK["OUTREACH_QUIET_HOURS_END"]
    local = now.astimezone(zone)
    if start_hour == end_hour:
        return None
    if start_hour > end_hour:
        is_quiet = local.hour >= start_hour or local.hour < end_hour
        end_day = local.date() + timedelta(days=1) if local.hour >= start_hour else local.date()
    else:
        is_quiet = start_hour <= local.hour < end_hour
        end_day = local.date()
    if not is_quiet:
        return None
    return datetime.combine(end_day, time(end_hour), tzinfo=zone).astimezone(UTC)
