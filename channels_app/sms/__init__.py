"""The SMS channel: Twilio-format webhooks in, the provider's client out, opt-out compliance, MMS media.

Provider-specific modules are named after the provider (``twilio_*``); what any SMS provider shares (keywords,
segments, the per-number rate limit, fetching media) is not.
"""
