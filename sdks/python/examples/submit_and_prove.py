"""Submits a manifest, then checks its receipt's inclusion proof against a signed checkpoint
and the log's consistency with an older checkpoint, offline. Needs MAESTRO_URL and
MAESTRO_TOKEN (an operator token)."""

import base64
import json

from maestro_sdk import Client, Manifest, Task
from maestro_sdk import tlog

manifest = Manifest(
    name="release-notes",
    version="1.0.0",
    region="eu-west",
    tasks=[
        Task(id="fetch", uses="builtin/echo", with_={"message": "v1.2 notes"}),
        Task(id="digest", uses="builtin/hash", with_={"data": "${{ tasks.fetch.outputs.message }}"}),
    ],
)

with Client() as c:
    trust = c.trust()  # published keys; distribute them out of band in production
    key, origin = trust.keys[0], trust.origin or ""
    before = c.log().checkpoint
    e = c.submit(manifest, wait="30s")
    print("execution", e.id, e.status)

    proof = c.proof(e.id)
    checkpoint = tlog.open_checkpoint(proof.checkpoint, key, origin)
    payload = base64.b64decode(json.loads(c.receipt(e.id))["dsseEnvelope"]["payload"])
    tlog.verify_inclusion(
        [bytes.fromhex(h) for h in proof.hashes],
        checkpoint.size,
        checkpoint.root,
        proof.log_index,
        tlog.leaf_hash(payload),
    )
    print(f"receipt is leaf {proof.log_index} of the signed tree of size {checkpoint.size}")

    if before is not None:
        old = tlog.open_checkpoint(before.note, key, origin)
        p = c.consistency(old.size, checkpoint.size)
        tlog.verify_consistency([bytes.fromhex(h) for h in p.hashes], old.size, old.root, checkpoint.size, checkpoint.root)
        print(f"the log of size {old.size} is a prefix of the log of size {checkpoint.size}")
