"""The client and the CLI (tkv_client/): what a program or a shell script relies on."""

from tests.mutants.mutant import Mutant

MUTANTS = [
    Mutant(
        "the client retries an unconditional write",
        "tkv_client/aio.py",
        "        return (await self._call(self._kv.PutPair, request, safe=if_version is not None)).revision",
        "        return (await self._call(self._kv.PutPair, request, safe=True)).revision",
        ("tests/reliability/test_client_retries.py",),
    ),
    Mutant(
        "the client does not retry a conditional write",
        "tkv_client/aio.py",
        "        return (await self._call(self._kv.PutPair, request, safe=if_version is not None)).revision",
        "        return (await self._call(self._kv.PutPair, request, safe=False)).revision",
        ("tests/reliability/test_client_retries.py",),
    ),
    Mutant(
        "a limit exits like any other error",
        "tkv_client/cli.py",
        "    grpc.StatusCode.RESOURCE_EXHAUSTED: 7,\n",
        "",
        ("tests/e2e/test_cli.py::test_the_exit_codes_for_a_limit_an_outage_and_other_errors",),
    ),
    Mutant(
        "an outage exits like any other error",
        "tkv_client/cli.py",
        "    grpc.StatusCode.UNAVAILABLE: 8,\n",
        "",
        ("tests/e2e/test_cli.py::test_the_exit_codes_for_a_limit_an_outage_and_other_errors",),
    ),
    Mutant(
        "global options after the command are ignored",
        "tkv_client/cli.py",
        "            setattr(context, field, value)",
        "            pass",
        ("tests/e2e/test_cli.py::test_sharing_and_account_commands_with_global_options_after_the_command",),
    ),
    Mutant(
        "the received grants are the given ones",
        "tkv_client/aio.py",
        '        request = kv_pb2.ListGrantsRequest(namespace="" if received else "me")',
        '        request = kv_pb2.ListGrantsRequest(namespace="me")',
        ("tests/e2e/test_cli.py::test_sharing_and_account_commands_with_global_options_after_the_command",),
    ),
]
