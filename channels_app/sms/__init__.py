"""What every SMS provider shares: STOP/START/HELP keywords, segment counting, the per-sender send-rate limit and
fetching MMS media. Each provider's own code is in its folder (``channels_app.providers.twilio``)."""
