"""PLACEHOLDER (helper sms-outbound fills this): Twilio's status callback webhook."""
