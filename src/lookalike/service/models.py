"""Response bodies of the HTTP API, as pydantic models so that OpenAPI documents them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    detail: str = Field(description="Why the request was refused, in words.")


class MatchOut(BaseModel):
    file_id: int = Field(description="Id of the indexed file (GET /files/{id}).")
    path: str = Field(description="The indexed file's path, printable (for display only).")
    method: str = Field(description="bytes, pixels, a hash name or embed.")
    distance: int = Field(description="Hamming distance in bits (0 for exact copies).")
    score: float = Field(description="1.0 identical, lower is less alike.")
    transform: str = Field(description="The flip or turn that turns the indexed file into the "
                           "query: identity, rot90, rot180, rot270, mirror, mirror+rot90, ...")


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


class GroupOut(BaseModel):
    files: list[GroupFileOut]
    method: str
    max_distance: int
    linkage: str
    diameter: int
    fully_linked: bool


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
