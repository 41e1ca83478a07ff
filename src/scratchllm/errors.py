"""The one exception type for mistakes a user can fix, and the one sentence for a disk that refuses a write.

A `UserError` carries one sentence naming the problem and the fix. The CLI prints it as
`error: ...` and exits with status 2 instead of showing a traceback. An `OSError` from the
environment (a full or read-only disk, a missing permission) is not the user's typo, but it
gets the same treatment: `os_error_sentence` names the path, the problem and what to do.

>>> from scratchllm.errors import UserError
>>> str(UserError("data path 'x.txt' does not exist; pass an existing file with --data"))
"data path 'x.txt' does not exist; pass an existing file with --data"
>>> import errno
>>> os_error_sentence(OSError(errno.ENOSPC, "No space left on device", "runs/x/config.toml"))
"cannot write 'runs/x/config.toml': no space left on device; free some space or choose another location"
"""

import errno


class UserError(Exception):
    """A problem in the user's input (paths, configs, prompts) with a one-line fix."""


# The OS errors a person fixes outside the program, with that fix; others stay tracebacks (bugs).
_WRITE = "cannot write"
ENVIRONMENT_ERRORS = {
    errno.ENOSPC: (_WRITE, "free some space or choose another location"),
    errno.EDQUOT: (_WRITE, "free some space (disk quota exceeded) or choose another location"),
    errno.EFBIG: (_WRITE, "the file system cannot hold a file this large; choose another location"),
    errno.EROFS: (_WRITE, "the file system is read-only; choose a writable location"),
    errno.EACCES: ("cannot open", "check its permissions or choose another location"),
    errno.EPERM: ("cannot open", "check its permissions or choose another location"),
    errno.EIO: ("cannot use", "the disk reported an I/O error; check the disk or choose another location"),
    errno.EISDIR: ("cannot use", "pass a file path, not a directory"),
    errno.ENOTDIR: ("cannot use", "a part of that path is a file, not a directory; choose another path"),
}


def os_error_sentence(e: OSError) -> str | None:
    """One line for an environment OSError (see ENVIRONMENT_ERRORS), or None for any other one."""
    if e.errno not in ENVIRONMENT_ERRORS:
        return None
    verb, fix = ENVIRONMENT_ERRORS[e.errno]
    what = (e.strerror or errno.errorcode[e.errno]).lower()
    where = f"{verb} '{e.filename}'" if e.filename else verb
    return f"{where}: {what}; {fix}"
