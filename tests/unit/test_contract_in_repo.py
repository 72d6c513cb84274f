"""The API contract lives in the repo (docs/api.md): no file points to a document outside
it, every `docs/api.md, "Section"` citation and `api.md#anchor` link names a section that
exists, and the page names every RPC of the protos."""

from __future__ import annotations

import re
import subprocess

from tests.stack import ROOT
from tkv.auth.v1 import auth_pb2
from tkv.kv.v1 import kv_pb2 as kv1_pb2
from tkv.kv.v2 import kv_pb2 as kv2_pb2

API = ROOT / "docs" / "api.md"
THIS = "tests/unit/test_contract_in_repo.py"

# Documents that held the contract before docs/api.md, outside the repo. A bare `SPEC` is a
# reference too (`(SPEC: 422)`), but not a variable named so (`SPEC = ...`, `str(SPEC)`).
OUTSIDE = re.compile(
    r"SPEC(?:-v2)?\.md|SPEC-v2|SEED\.ru|\.\./shared\b|/work/shared\b|(?<![\w.])SPEC(?![\w-])(?!\s*[=)])"
)
# `docs/api.md, "Watch"` and `docs/api.md, "Sharing", "Watch"`; quotes may be JSON-escaped.
CITATION = re.compile(r'docs/api\.md((?:,\s*\\?"[^"\\\n]+\\?")+)')
CITED = re.compile(r'\\?"([^"\\\n]+)\\?"')
# Markdown links into the page: (api.md#watch), (docs/api.md#v2-http-routes).
ANCHOR = re.compile(r"\((?:\.\./|docs/)?api\.md#([\w-]+)\)")


def repo_files() -> list[str]:
    """Tracked files and new ones not yet added, as a clone will hold them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if name != THIS and (ROOT / name).is_file()]


def texts() -> dict[str, str]:
    found = {}
    for name in repo_files():
        data = (ROOT / name).read_bytes()
        if b"\0" not in data:  # binary files hold no references
            found[name] = data.decode("utf-8", errors="replace")
    return found


def headings() -> list[str]:
    return [match.group(1).strip() for match in re.finditer(r"^#+ (.+)$", API.read_text(), re.M)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_no_file_points_to_a_document_outside_the_repo():
    found = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for name, text in texts().items()
        for match in OUTSIDE.finditer(text)
    ]
    assert not found, "cite docs/api.md instead of:\n" + "\n".join(found)


def test_every_citation_of_the_contract_names_one_of_its_sections():
    sections = set(headings())
    assert len(sections) == len(headings()), "section titles of docs/api.md must be unique"
    anchors = {slug(title) for title in sections}
    cited = 0
    wrong = []
    for name, text in texts().items():
        for match in CITATION.finditer(text):
            for title in CITED.findall(match.group(1)):
                cited += 1
                if title not in sections:
                    wrong.append(f'{name}: "{title}"')
        for match in ANCHOR.finditer(text):
            cited += 1
            if match.group(1) not in anchors:
                wrong.append(f"{name}: #{match.group(1)}")
    assert cited > 20, "the citations were not found: has their form changed?"
    assert not wrong, "no such section in docs/api.md:\n" + "\n".join(wrong)


def test_the_contract_names_every_rpc_of_the_protos():
    text = API.read_text()
    missing = [
        method.full_name
        for module in (auth_pb2, kv1_pb2, kv2_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if not re.search(rf"\b{method.name}\b", text)
    ]
    services = [
        service.full_name
        for module in (auth_pb2, kv1_pb2, kv2_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        if service.full_name not in text
    ]
    assert not missing and not services, f"docs/api.md does not name {missing + services}"
