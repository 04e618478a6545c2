"""Acting on duplicate groups safely: plan (keep rules) -> review -> apply (journal) -> undo."""

from .apply import ApplyReport, Outcome, apply_plan
from .plan import KEEP_RULES, Plan, make_plan, read_plan, write_plan
from .undo import UndoReport, find_runs, undo_run

__all__ = ["ApplyReport", "KEEP_RULES", "Outcome", "Plan", "UndoReport", "apply_plan",
           "find_runs", "make_plan", "read_plan", "undo_run", "write_plan"]
