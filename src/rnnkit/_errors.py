"""The one exception type rnnkit raises for bad input."""


class RnnkitError(ValueError):
    """Bad input: the message says what was expected and what came."""
