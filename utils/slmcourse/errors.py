"""The course's exceptions: each carries a message meant for a learner, not a traceback reader."""


class CourseError(ValueError):
    """Bad input to a course function: the message says what was wrong and what to do instead."""


class ModelFileError(CourseError, RuntimeError):
    """A bundled model file is missing or does not match its SHA-256: it is never used."""


class OfflineError(CourseError, RuntimeError):
    """A Hub model was asked for while the machine cannot reach the Hub."""
