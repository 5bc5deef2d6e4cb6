"""Errors a user can cause. Each carries a message that says what to do."""


class UserError(Exception):
    """A problem with the user's input or setup; shown without a traceback."""


class BadRequest(UserError):
    """A request to a served function that cannot be answered as sent (HTTP 400)."""

    status_code = 400


class PayloadTooLarge(BadRequest):
    """An image over the pixel limit or a body over the size limit (HTTP 413)."""

    status_code = 413


class ModelNotFound(UserError):
    """No weights where a function expects them."""
