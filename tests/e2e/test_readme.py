"""The README's grpcurl session, run verbatim against real processes (ports swapped)."""

import os
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


def test_readme_v2_curl_session_works_as_written(processes):
    script = readme_block("readme-v2-session").replace("127.0.0.1:8080", processes.gateway)
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    lines = output.splitlines()
    assert '"expire_time":' in lines[1] and '"revision":' in lines[1], output
    assert '{"key":"session/42","value":{"user":"carol"},' in output
    assert '"next_page_token":' in lines[4] and '"key":"session/42"' in lines[4], output
    assert '"key":"settings"' in lines[5] and "next_page_token" not in lines[5], output
    assert '"value"' not in lines[4] + lines[5]  # keys_only
    assert lines[6].startswith(
        '{"code":10,"message":"These pairs do not have the expected version: settings","details":'
    ), output
    assert '"reason":"VERSION_MISMATCH"' in lines[6] and "google.rpc.PreconditionFailure" in lines[6]
    assert lines[7].startswith('{"revision":'), output
    assert lines[-1].startswith('{"code":7,"message":"You may not use the namespace carol"'), output


def test_readme_v2_grpcurl_session_works_as_written(processes):
    script = (
        readme_block("readme-v2-grpc-session")
        .replace("127.0.0.1:50051", processes.auth)
        .replace("127.0.0.1:50052", processes.kv)
    )
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    for expected in (
        '"revision": "',
        '"missing_keys": [\n    "c"\n  ]',
        '"expire_time": "',
        "Code: Aborted",
        "Message: These pairs do not have the expected version: a",
    ):
        assert expected in output, f"{expected!r} missing from:\n{output}"
    assert output.count("ERROR:") == 1, output


def test_readme_watch_session_works_as_written(processes):
    script = readme_block("readme-watch-session").replace("127.0.0.1:8080", processes.gateway)
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = (result.stdout + result.stderr).splitlines()
    events = [line for line in lines if '"events"' in line]
    assert lines[0].startswith('{"revision":"'), lines
    assert [('"type":"PUT"' in e, '"type":"DELETE"' in e, '"type":"EXPIRE"' in e) for e in events] == [
        (True, False, False),
        (False, True, False),
        (True, False, False),
        (False, False, True),
    ], lines
    assert '"key":"app/color","value":"blue"' in events[0] and '"key":"app/session"' in events[3]
    rest = lines[lines.index(events[-1]) + 1 :]
    assert rest[0].startswith('{"namespace":"frank","grantee":"grace","prefix":"app/","role":"READER"'), rest
    assert '"value":"green"' in rest[1] and '"key":"app/color"' in rest[1], rest
    assert rest[2].startswith('{"grants":[{"namespace":"frank","grantee":"grace"'), rest
    assert rest[3] == "{}", rest
    assert rest[4].startswith('{"code":7,"message":"You may not use the namespace frank"'), rest


def test_readme_cli_session_works_as_written(processes, tmp_path):
    # Run where its files may go; `$PWD/.venv` is the checkout's, as for a user in it.
    script = readme_block("readme-cli-session").replace("$PWD/.venv/bin", str(ROOT / ".venv" / "bin"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "TKV_SERVER": processes.gateway}
    result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "You have been successfully registered!" and lines[1] == "signed in as ivan", lines
    assert lines[2].isdigit() and lines[3] == 'config/color\t"blue"' and lines[4] == '{"config/color": "blue"}'
    assert lines[5] == "config/color" and lines[6] == 'config/color\t"blue"' and lines[7] == "signed out", lines
    assert (tmp_path / "config.jsonl").read_text() == '{"key": "config/color", "value": "blue"}\n'


def test_readme_metrics_session_works_as_written(processes):
    script = (
        readme_block("readme-metrics-session")
        .replace("127.0.0.1:8080", processes.gateway)
        .replace("127.0.0.1:9102", f"127.0.0.1:{processes.stack.kv_metrics_port}")
    )
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    request_id = re.search(r"x-request-id: ([0-9a-f-]{36})", output, re.I)
    assert request_id, output
    counted = re.search(
        r'^grpc_server_handled_total\{grpc_code="NotFound",grpc_method="Read",'
        r'grpc_service="tkv.kv.v1.KeyValueService",grpc_type="unary"\} (\d+)\.0$',
        output,
        re.M,
    )
    assert counted and int(counted.group(1)) >= 1, output
    log = (processes.stack.data_dir / "kv_svc.log").read_text()
    assert f'"request_id": "{request_id.group(1)}"' in log
