"""Tokens and principals: who is calling, and what they may do."""
