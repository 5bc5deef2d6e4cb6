"""Reviewing corrected labels against the deployed model's predictions in FiftyOne."""
