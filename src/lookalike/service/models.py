"""Request and response bodies of the HTTP API, as pydantic models so that OpenAPI documents
them, and the ranges of the values a client sends (every number has one)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from ..actions.plan import DEFAULT_RULES, KEEP_RULES
from ..index.decisions import MARKS
from ..report.health import CHECKS, MAX_LISTED

Mark = Literal[MARKS]
HealthCheck = Literal[tuple(c.name for c in CHECKS)]


def _json_integer(value: object) -> object:
    """JSON Schema's integer is any number without a fraction: 3.0 is 3 (and "3" is not)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def integer(low: int, high: int) -> object:
    """A JSON integer in low..high (the range inside the validator, so that the schema says
    minimum and maximum)."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_json_integer)]


# Ids are SQLite integers, which end at 2**63 - 1 (SQLite cannot even be asked about a
# larger one); the API stops at 2**53 - 1, the largest integer a JSON number keeps exactly
# in a browser (and in any client that reads numbers as doubles). No index holds more rows.
MAX_ID = 2**53 - 1
FileId = integer(1, MAX_ID)
MAX_GROUP_SIZE = 1_000_000  # no group of a collection this server can hold is larger
GroupSize = integer(2, MAX_GROUP_SIZE)
MAX_NAME = 64  # characters of a method name
MAX_PAGE_SIZE = 500  # groups of one page, matches of one query
MAX_PAGE = 1_000_000  # pages of groups: far more than any index holds at page_size 1
MAX_WHERE = 20  # metadata conditions in one filter
MAX_WHERE_CHARS = 500  # characters of one condition
# KEY:VALUE (or KEY=VALUE when there is no colon). The key becomes a JSON path in SQL
# ($."key"), so it has no quote, backslash or control character. state.parse_where reads it.
WHERE_PATTERN = r'^(?:[^:"\\\x00-\x1f]+:[\s\S]*|[^:="\\\x00-\x1f]+=[^:]*)$'
Where = Annotated[str, StringConstraints(pattern=WHERE_PATTERN, max_length=MAX_WHERE_CHARS)]


class Strict(BaseModel):
    """A request body: values of the declared JSON types only ("1" is not a number, 0 is not
    false: `"execute": "no"` must not read as true), and no unknown fields (a misspelt
    "excute" would otherwise be a silent dry run)."""
    model_config = ConfigDict(strict=True, extra="forbid")


class ErrorOut(BaseModel):
    detail: str = Field(description="Why the request was refused, in words.")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the name.")
    msg: str
    type: str


class InvalidOut(BaseModel):
    """A 422: in words (a picture that cannot be read, a bad filter), or FastAPI's list of
    the parameters that do not fit their declared types and ranges."""
    detail: str | list[ValidationIssue]


class MatchOut(BaseModel):
    file_id: int = Field(description="Id of the indexed file (GET /files/{id}).")
    path: str = Field(description="The indexed file's path, printable (for display only).")
    method: str = Field(description="bytes, pixels, a hash name or embed.")
    distance: int = Field(description="Hamming distance in bits (0 for exact copies).")
    score: float = Field(description="1.0 identical, lower is less alike.")
    transform: str = Field(description="The flip or turn that turns the indexed file into the "
                           "query: identity, rot90, rot180, rot270, mirror, mirror+rot90, ...")
    words: str = Field(description='The match in plain words, as the command line says it: '
                       '"mirrored copy · similarity 97%".')


class QueryOut(BaseModel):
    name: str = Field(description="The uploaded file's name, or the path that was asked for.")
    matches: list[MatchOut]
    method: str
    max_distance: int | None = None


class IndexedOut(BaseModel):
    name: str
    file_id: int | None = Field(description="Id of the stored file; null when it failed.")
    error: str | None = None


class IndexOut(BaseModel):
    files: list[IndexedOut]
    scanned: int
    unchanged: int
    failed: int


class GroupFileOut(BaseModel):
    file_id: int
    path: str
    width: int
    height: int
    bytes: int
    method: str | None = Field(None, description="How this file matched inside its group: "
                               "bytes, pixels, a hash name or embed (its strongest link).")
    distance: int | None = Field(None, description="The distance of that link, in bits.")
    transform: str | None = Field(None, description="The flip or turn of that link: it "
                                  "turns the member matched into this file.")
    from_first: str | None = Field(None, description="The flip or turn that turns the group's "
                                   "first file into this one, composed along the strongest "
                                   "links (identity for the first; names as for transform).")
    mark: Mark | None = Field(None, description="A person's mark on the file, if any.")
    present: bool = Field(True, description="Whether the file is on disk now (false after "
                          "a quarantine, until it is undone or the index scanned again).")
    format: str | None = Field(None, description="The file format the scan saw (JPEG, PNG, "
                               "...).")
    score: float | None = Field(None, description="The strength of that link: 1.0 identical, "
                                "lower is less alike (as in /query's matches).")
    words: str | None = Field(None, description="How this file matched, in plain words: "
                              "'mirrored copy of a.png · similarity 97%', 'same pixels as "
                              "a.png, other file format (PNG and JPEG)'.")


BestValue = Literal["resolution", "bytes", "format", "date", "path"]


class KeeperOut(BaseModel):
    """The file a plan with the default keep rules (and the files' marks) keeps."""
    file_id: int = Field(description="Id of the kept file.")
    path: str = Field(description="Its path, printable.")
    reason: str = Field(description="Why, in words: 'largest resolution', 'marked keep', "
                        "'in a reference folder', ...")
    best: dict[BestValue, list[int]] = Field(
        default_factory=dict, description="For each value a person compares (resolution, "
        "bytes, format: lossless over lossy, date: oldest, path: shortest), the ids of the "
        "members best on it; a value on which all members tie is left out.")


class GroupOut(BaseModel):
    number: int = Field(description="1-based position among the groups of these filters.")
    files: list[GroupFileOut]
    method: str
    max_distance: int
    linkage: str
    diameter: int
    fully_linked: bool
    keeper: KeeperOut | None = Field(None, description="The file `plan` would keep with "
                                     "these keep rules and the files' marks, and why (null "
                                     "when fewer than two files are left).")


class GroupsPage(BaseModel):
    groups: list[GroupOut]
    page: int
    page_size: int
    total: int = Field(description="Groups that pass the filters, over all pages.")
    pages: int


class FileOut(BaseModel):
    file_id: int
    path: str
    bytes: int
    mtime_ns: int
    width: int
    height: int
    format: str
    mode: str
    meta: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="The file's metadata (files.meta), e.g. category.")
    taken: str | None = Field(None, description="When the picture was taken, by its EXIF "
                              "(YYYY-MM-DD HH:MM:SS); read from the file's header.")
    mark: Mark | None = None


# --- the index as a whole ------------------------------------------------------------------

class InfoOut(BaseModel):
    index: str = Field(description="The index file (for display).")
    files: int = Field(description="Live image files.")
    methods: list[str] = Field(description="Methods whose signatures the index holds and "
                               "that find duplicates (not the measurements 'colour' and "
                               "'health'); 'auto' is always usable where a hash is present.")
    meta: dict[str, list[str]] = Field(description="Metadata keys of the files and their "
                                       "most frequent values (for the filters of /groups).")
    token: bool = Field(description="Whether this server asks for a bearer token.")
    keep_rules: list[str] = Field(description="The keep rules POST /plan takes, and "
                                  "default_keep_rules, the order it uses when given none.")
    default_keep_rules: list[str] = Field(description="The default keep rules, in order.")


# --- dataset health ------------------------------------------------------------------------

class HealthFileOut(BaseModel):
    file_id: int = Field(description="Id of the flagged file (GET /files/{id}/thumbnail).")
    path: str = Field(description="Its path, printable (for display only).")
    value: float = Field(description="The value its check compared with the threshold.")


class HealthCheckOut(BaseModel):
    name: HealthCheck
    value: str = Field(description="What is compared, in words.")
    flags: str = Field(description="Which side of the threshold is flagged: below, at or "
                       "below, at or above, above.")
    threshold: float | None = Field(description="In the value's own unit (the outlier "
                                    "percentile as a distance); null when it could not be had.")
    checked: int = Field(description="Files this check could look at.")
    count: int = Field(description="Files flagged, all of them.")
    note: str | None = Field(None, description="Why the check could not run, when it "
                             "checked no file.")
    by_category: dict[str, int] = Field(default_factory=dict, description="Files flagged per "
                                        "value of the metadata key `by`.")
    listed: int = Field(description=f"Flagged files that can be paged through (the worst "
                        f"{MAX_LISTED:,} at most).")
    files: list[HealthFileOut] = Field(description="Flagged files, the worst first: `limit` "
                                       "of them from `offset`.")


class HealthOut(BaseModel):
    """The dataset health checks (as `lookalike stats` counts them), with the files each
    flags."""
    images: int = Field(description="Readable files.")
    measured: int = Field(description="Of them, with stored health measurements.")
    by: str | None = Field(description="The metadata key counts are split by, if any.")
    checks: list[HealthCheckOut]
    notes: list[str] = Field(description="What could not be checked, and why.")


class FolderOut(BaseModel):
    path: str
    files: int = Field(description="Live files under it.")


class FoldersOut(BaseModel):
    folders: list[FolderOut] = Field(description="Folders holding indexed files, and their "
                                     "parents down to the one all share; what /plan accepts "
                                     "as prefer_path and reference.")


# --- decisions -----------------------------------------------------------------------------

class DecisionIn(Strict):
    decision: Literal[(*MARKS, "not-duplicate", "clear")] = Field(
        description="keep / quarantine: mark the files (a plan follows marks over the keep "
        "rules); not-duplicate: these files are not duplicates of `others` (or, without "
        "others, of each other), remembered per content so later groups and `dupes` leave "
        "them apart; clear: drop the marks of the files and their not-duplicate decisions "
        "with `others` (or each other).")
    file_ids: list[FileId] = Field(min_length=1, max_length=1000)
    others: list[FileId] = Field(default_factory=list, max_length=1000)


class DecisionOut(BaseModel):
    decision: str
    file_ids: list[int]
    marked: int = Field(description="Files whose mark was set or cleared.")
    pairs: int = Field(description="Content pairs recorded or forgotten.")


class MarkOut(BaseModel):
    file_id: int
    path: str
    mark: Mark
    created: float


class PairOut(BaseModel):
    file_a: int | None = Field(description="A live file holding the first content (null if "
                               "none is left).")
    path_a: str | None
    file_b: int | None
    path_b: str | None
    decision: str
    created: float


class DecisionsOut(BaseModel):
    marks: list[MarkOut]
    pairs: list[PairOut]
    total_marks: int
    total_pairs: int


# --- plan, apply, runs, undo ---------------------------------------------------------------

PLAN_ID = r"^[0-9A-Za-z_-]{1,80}$"
KeepRule = Literal[tuple(KEEP_RULES)]  # type: ignore[valid-type]


class PlanIn(Strict):
    rules: list[KeepRule] = Field(default=list(DEFAULT_RULES), max_length=len(KEEP_RULES),
                                  description="Keep rules, in order.")
    prefer_path: list[str] = Field(default_factory=list, max_length=50, description="Folders "
                                   "(from GET /folders) whose files are kept first.")
    reference: list[str] = Field(default_factory=list, max_length=50, description="Folders "
                                 "(from GET /folders) whose files are always kept and never "
                                 "touched.")
    method: str = Field("auto", max_length=MAX_NAME)
    min_size: GroupSize = 2
    max_size: GroupSize | None = None
    where: list[Where] = Field(default_factory=list, max_length=MAX_WHERE,
                               description="KEY:VALUE, as in /groups.")
    health: HealthCheck | None = Field(None, description="Only the groups with a file this "
                                       "health check flags, as in /groups.")
    use_marks: bool = Field(True, description="Follow the files' keep/quarantine marks "
                            "over the rules.")


class PlanFileOut(BaseModel):
    file_id: int | None = None
    path: str
    bytes: int | None = None
    reason: str | None = Field(None, description="Why it is kept, or skipped.")


class PlannedGroupOut(BaseModel):
    keep: PlanFileOut
    kept: list[PlanFileOut] = Field(description="Other files kept by a person's mark.")
    reference: list[PlanFileOut]
    quarantine: list[PlanFileOut]
    skipped: list[PlanFileOut]
    method: str


class PlanOut(BaseModel):
    plan_id: str = Field(description="Give it to POST /apply.")
    created: str
    rules: list[str]
    prefer_path: list[str]
    reference: list[str]
    groups: list[PlannedGroupOut]
    actions: int
    bytes: int


class ApplyIn(Strict):
    plan_id: str = Field(pattern=PLAN_ID)
    execute: bool = Field(False, description="Act; without it, a dry run that changes "
                          "nothing.")


class OutcomeOut(BaseModel):
    file_id: int | None
    path: str
    action: str
    status: str = Field(description="would (dry run), done, skipped or failed.")
    reason: str


class ApplyOut(BaseModel):
    plan_id: str
    executed: bool
    run: str | None = Field(description="The run id, for POST /undo.")
    counts: dict[str, int]
    outcomes: list[OutcomeOut]


class RunOut(BaseModel):
    run: str
    started: float | None
    finished: bool = Field(description="False for a run that was interrupted.")
    steps: int
    done: int
    undone: int


class RunsOut(BaseModel):
    runs: list[RunOut] = Field(description="Newest first.")


class UndoIn(Strict):
    run: str = Field(pattern=PLAN_ID, description="A run id from GET /runs.")


class UndoProblemOut(BaseModel):
    path: str
    reason: str


class UndoOut(BaseModel):
    run: str
    restored: list[PlanFileOut]
    unchanged: int
    problems: list[UndoProblemOut]
