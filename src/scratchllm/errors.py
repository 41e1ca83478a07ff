"""The one exception type for mistakes a user can fix.

A `UserError` carries one sentence naming the problem and the fix. The CLI prints it as
`error: ...` and exits with status 2 instead of showing a traceback.

>>> from scratchllm.errors import UserError
>>> str(UserError("data path 'x.txt' does not exist; pass an existing file with --data"))
"data path 'x.txt' does not exist; pass an existing file with --data"
"""


class UserError(Exception):
    """A problem in the user's input (paths, configs, prompts) with a one-line fix."""
