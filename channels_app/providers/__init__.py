"""One folder per channel provider: its adapter (``adapter.py``) and everything only that provider needs.

The chat widget is a provider too; its folder is the ``chat`` app (``chat/adapter.py``).
"""
