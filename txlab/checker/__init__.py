"""txlab's anomaly checker: a history in, a verdict out. Pure: no database, no threads.

    from txlab import checker
    result = checker.check("run.jsonl", isolation="REPEATABLE READ")
    print(checker.render(result, "text"))

See docs/checker.md for the rules it applies.
"""

from txlab.checker.check import INVALID, UNKNOWN, VALID, NotInParts, Result, check
from txlab.checker.loading import HistoryFormatError, Txns, load
from txlab.checker.models import ANOMALIES, MODELS, POSTGRES_LEVELS, model_for_isolation
from txlab.checker.render import FORMATS, render

__all__ = ["check", "render", "load", "Result", "Txns", "HistoryFormatError", "ANOMALIES",
           "MODELS", "POSTGRES_LEVELS", "model_for_isolation", "FORMATS", "VALID", "INVALID",
           "UNKNOWN", "NotInParts"]
