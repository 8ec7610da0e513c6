"""The one exception type users see: a short message that names the culprit."""


class AlexNetError(Exception):
    """A problem with the user's input (file, folder, flag, checkpoint).

    The command line prints it as a single line `alexnet: error: <message>` and exits non-zero,
    without a traceback: the message itself must name the file or flag at fault.
    """
