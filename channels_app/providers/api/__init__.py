"""The API channel: the company's own systems post messages in our JSON shape and receive replies at a callback."""
