"""Email: provider webhooks, IMAP and mbox in, SMTP out, with bounce, quote and auto-reply handling."""
