"""PLACEHOLDER (helper sms-inbound fills this): Twilio's inbound message webhook."""
