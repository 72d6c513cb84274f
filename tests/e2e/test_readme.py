"""The README's grpcurl session, run verbatim against real processes (ports swapped)."""

import re
import subprocess

from tests.stack import ROOT


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name}:start -->\n```sh\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert block, f"README lost its {name} block"
    return block.group(1)


def test_readme_grpcurl_session_works_as_written(processes):
    script = (
        readme_block("readme-session")
        .replace("127.0.0.1:50051", processes.auth)
        .replace("127.0.0.1:50052", processes.kv)
    )
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    for expected in (
        "tkv.auth.v1.AuthService",
        '"message": "You have been successfully registered!"',
        '"status": "success"',
        '"greeting": "hello"',
        '"retries": 3',
        '"message": "You have been successfully logout from your account! The token has been revoked."',
        "Code: Unauthenticated",
        "Message: You are not authorized! Please, sign in or sign up (access token has been revoked)",
    ):
        assert expected in output, f"{expected!r} missing from:\n{output}"
    # Only the last command (the read after logout) may fail.
    assert output.count("ERROR:") == 1, output


def test_readme_curl_session_works_as_written(processes):
    script = readme_block("readme-http-session").replace("127.0.0.1:8080", processes.gateway)
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    for expected in (
        '{"message":"You have been successfully registered!"}',
        '{"status":"success"}',
        '{"status":"success, but these keys have not been written: city. Because they have already been in kv store",'
        '"skipped_keys":["city"]}',
        '"city":"Paris"',
        '{"message":"These keys don\'t exist: nowhere"}',
        '{"message":"You have been successfully logout from your account! The token has been revoked."}',
        "HTTP/1.1 401 Unauthorized",
        '{"message":"You are not authorized! Please, sign in or sign up (access token has been revoked)"}',
    ):
        assert expected in output, f"{expected!r} missing from:\n{output}"
