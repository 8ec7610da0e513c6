"""The one exception type users see: a short message that names the culprit."""


class AlexNetError(Exception):
    """A problem with the user's input (file, folder, flag, checkpoint).

    The command line prints it as a single line `alexnet: error: <message>` and exits non-zero,
    without a traceback: the message itself must name the file or flag at fault.
    """


class UsageError(AlexNetError):
    """A command-line flag out of its range: exits with status 2, argparse's convention for bad flags."""
    exit_code = 2


class ConfigError(AlexNetError, ValueError):
    """A setting out of its range, found where the setting is defined (the config dataclasses)."""


def require(ok: bool, name: str, value: object, expected: str) -> None:
    """Raise ConfigError naming the setting unless `ok`: the one form of every range check."""
    if not ok:
        shown = " ".join(repr(value).split())  # one line, whatever the value (a tensor's repr has several)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ConfigError(f"{name} is out of range: {shown} ({expected})")


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text on one line (some libraries' messages span several: tarfile lists each
    compression it tried), cut to `limit` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
