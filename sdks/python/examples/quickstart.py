"""Quickstart (the README's five lines): run the embedded "hello" workflow and verify its
receipt offline. Needs MAESTRO_URL and MAESTRO_TOKEN (an operator token)."""

from maestro_sdk import Client

with Client() as c:  # MAESTRO_URL, MAESTRO_TOKEN
    e = c.submit(workflow="hello", wait="30s")
    report = c.verify(e.id)
    print(e.status, report.valid)
