"""Mechanisms: who changes the game's payoffs (peer incentives, fixed incentives, taxes)."""
