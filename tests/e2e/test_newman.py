"""The repository's Postman collection, run by newman against the real gateway."""

import json
import subprocess

from tests.stack import ROOT

COLLECTION = ROOT / "postman" / "tkv.postman_collection.json"


def test_postman_collection_passes_with_newman(processes, tmp_path):
    newman = ROOT / "node_modules" / ".bin" / "newman"
    assert newman.exists(), "newman is not installed; `make test` installs it (npm ci)"
    report = tmp_path / "newman.json"
    result = subprocess.run(
        [
            str(newman),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl=http://127.0.0.1:{processes.stack.gateway_port}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    expected_requests = sum(len(folder["item"]) for folder in json.loads(COLLECTION.read_text())["item"])
    assert stats["requests"] == {"total": expected_requests, "pending": 0, "failed": 0}
    # Each request checks at least its status, content type and body shape.
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 3 * expected_requests - 3
