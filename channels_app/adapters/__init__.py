"""The interface between the core and every channel provider (``base``) and the registry that finds an adapter
for a channel (``registry``); ``installed`` registers the built-in ones."""
