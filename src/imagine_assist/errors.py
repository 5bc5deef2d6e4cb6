"""Errors a user can cause. Each carries a message that says what to do.

Which HTTP status each becomes at the serving edge is decided in one place,
`imagine_assist.nuclio.protocol`: the functions raise these and know nothing of HTTP.
"""


class UserError(Exception):
    """A problem with the user's input or setup; shown without a traceback."""


class BadRequest(UserError):
    """A request to a served function that cannot be answered as sent."""


class PayloadTooLarge(BadRequest):
    """An image over the pixel limit or a body over the size limit."""


class ModelNotFound(UserError):
    """No weights where a function expects them."""
