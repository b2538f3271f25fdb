"""Twilio SMS and MMS: signed webhooks in, the twilio client out, delivery status callbacks."""
