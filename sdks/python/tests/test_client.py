"""The API client against a real ``maestro serve``: submissions in every form, listing with
cursors, errors with their codes, receipts verified offline (and tampered ones refused),
inclusion and consistency proofs checked against signed checkpoints, search, disclosure
packs and Sigstore bundles."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from maestro_sdk import (
    Client,
    DeniedByPolicy,
    Manifest,
    ManifestRejected,
    NotFound,
    PublicKey,
    Task,
    Trust,
    Unauthorized,
    problems,
    verify_receipt,
)
from maestro_sdk import tlog
from maestro_sdk.testing import Server

from .conftest import FIXTURES

MINIMAL = (FIXTURES / "manifests" / "valid-minimal.yaml").read_text()


def test_submit_yaml_waits_and_matches_the_local_digest(acme: Client) -> None:
    e = acme.submit(MINIMAL, wait="30s")
    assert e.status == "succeeded" and e.is_final
    assert e.manifest_digest == "sha256:1f45e3e8f87540675025bac3dc725669435e702ac668e1bca6b3216598efcbb0"
    assert e.receipt is not None
    assert acme.get_execution(e.id).receipt == e.receipt


def test_submit_model_and_workflow(acme: Client) -> None:
    m = Manifest(
        name="from-model",
        version="1.0.0",
        region="eu-west",
        tasks=[
            Task(id="a", uses="builtin/echo", with_={"message": "hi"}),
            Task(id="b", uses="builtin/hash", with_={"data": "${{ tasks.a.outputs.message }}"}),
        ],
    )
    e = acme.submit(m, wait="30s")
    assert e.status == "succeeded"
    assert [t.status for t in e.tasks] == ["succeeded", "succeeded"]
    assert e.tasks[1].outputs["digest"].startswith("sha256:")
    w = acme.submit(workflow="hello")
    final = acme.wait(w.id)
    assert final.status == "succeeded" and final.manifest["name"] == "hello"


def test_invalid_manifest_error_carries_the_same_problems_as_the_local_validator(acme: Client) -> None:
    text = (FIXTURES / "manifests" / "invalid-inputs.yaml").read_text()
    with pytest.raises(ManifestRejected) as info:
        acme.submit(text)
    err = info.value
    assert err.status == 400 and err.code == "manifest_invalid"
    remote = [(p.code, p.path, p.message) for p in err.problems]
    local = [(p.code, p.path, p.message) for p in problems(text)]
    assert remote == local


def test_denied_submission_is_recorded_with_a_verifiable_receipt(acme: Client) -> None:
    with pytest.raises(DeniedByPolicy) as info:
        acme.submit(MINIMAL.replace("eu-west", "us-east"), wait="30s")
    assert info.value.code == "denied_by_policy"
    denied = info.value.execution
    assert denied is not None and denied.status == "denied"
    report = acme.verify(denied.id)
    assert report.valid, report.checks
    assert report.status == "denied"


def test_errors_for_missing_foreign_and_unauthenticated(server: Server, acme: Client, globex: Client) -> None:
    e = acme.submit(MINIMAL, wait="30s")
    with pytest.raises(NotFound) as info:
        globex.get_execution(e.id)
    assert info.value.status == 404
    with pytest.raises(NotFound):
        acme.get_execution("ex_01m8p3yv52ja9da2bmz53vrgbg")
    with Client(server.url, "mct_" + "0" * 64) as bad:
        with pytest.raises(Unauthorized) as u:
            bad.list_executions()
    assert u.value.code == "unauthenticated"


def test_listing_follows_cursors(acme: Client) -> None:
    for _ in range(3):
        acme.submit(MINIMAL.replace("minimal", "paged"), wait="30s")
    page = acme.list_executions(name="paged", limit=2)
    assert len(page.items) == 2 and page.next_cursor
    seen = [x.id for x in acme.iter_executions(name="paged", limit=2)]
    assert len(seen) == len(set(seen)) >= 3
    assert all(x.name == "paged" for x in acme.iter_executions(name="paged"))


def test_receipts_verify_offline_and_tampering_is_caught(acme: Client) -> None:
    e = acme.submit(MINIMAL, wait="30s")
    trust = acme.trust()
    raw = acme.receipt(e.id)
    report = verify_receipt(raw, trust)
    assert report.valid, report.checks
    assert report.execution_id == e.id and report.tenant == "acme"
    assert e.receipt is not None and report.digest == e.receipt.digest
    assert acme.receipt_by_digest(e.receipt.digest) == raw

    bundle = json.loads(raw)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["region"] = "us-east"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    tampered = verify_receipt(json.dumps(bundle), trust)
    assert not tampered.valid and tampered.failed == ["signature", "inclusion"]

    other = Trust(trust.keys, "elsewhere/log")
    assert verify_receipt(raw, other).failed == ["checkpoint"]


def test_inclusion_and_consistency_proofs_check_against_signed_checkpoints(acme: Client) -> None:
    first = acme.submit(MINIMAL, wait="30s")
    old = acme.log().checkpoint
    assert old is not None
    for _ in range(3):
        acme.submit(MINIMAL, wait="30s")
    key = acme.trust().keys[0]
    new = acme.log().checkpoint
    assert new is not None and new.size > old.size

    proof = acme.proof(first.id)
    cp = tlog.open_checkpoint(proof.checkpoint, key, new.origin)
    assert cp.size == proof.tree_size and cp.root.hex() == proof.root_hash
    bundle = json.loads(acme.receipt(first.id))
    leaf = tlog.leaf_hash(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert leaf.hex() == proof.leaf_hash
    tlog.verify_inclusion([bytes.fromhex(h) for h in proof.hashes], cp.size, cp.root, proof.log_index, leaf)
    with pytest.raises(tlog.ProofError):
        tlog.verify_inclusion([bytes.fromhex(h) for h in proof.hashes], cp.size, cp.root, proof.log_index + 1, leaf)

    c = acme.consistency(old.size, new.size)
    old_cp = tlog.open_checkpoint(old.note, key, old.origin)
    new_cp = tlog.open_checkpoint(new.note, key, new.origin)
    tlog.verify_consistency([bytes.fromhex(h) for h in c.hashes], old_cp.size, old_cp.root, new_cp.size, new_cp.root)
    with pytest.raises(tlog.ProofError):
        tlog.verify_consistency([bytes.fromhex(h) for h in c.hashes], old_cp.size, new_cp.root, new_cp.size, new_cp.root)
    assert acme.checkpoint().startswith(new.origin + "\n")


def test_search_finds_receipts_by_digest_prefix(acme: Client) -> None:
    e = acme.submit(MINIMAL.replace("minimal", "searchable"), wait="30s")
    assert e.receipt is not None
    import time

    deadline = time.monotonic() + 20
    while True:
        hits = acme.search(e.receipt.digest[:20]).hits
        if any(h.id == e.id for h in hits) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(h.id == e.id and h.receipt == e.receipt.digest for h in hits)


def test_disclosure_pack_is_a_tar_gz_with_the_receipt(acme: Client, tmp_path: object) -> None:
    e = acme.submit(MINIMAL, wait="30s")
    data = acme.disclosure("eu-west", execution_id=e.id)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
    assert any(e.id in n for n in names), names
    assert acme.disclosure("eu-west", execution_id=e.id) == data  # deterministic


def test_sigstore_bundle_carries_the_same_envelope(acme: Client) -> None:
    e = acme.submit(MINIMAL, wait="30s")
    ours = json.loads(acme.receipt(e.id))
    sig = json.loads(acme.receipt(e.id, format="sigstore"))
    assert sig["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert sig["dsseEnvelope"]["payload"] == ours["dsseEnvelope"]["payload"]
    assert sig["verificationMaterial"]["publicKey"]["hint"] == PublicKey.from_pem(ours["publicKey"]["pem"]).keyid


def test_published_schema_and_keys(acme: Client) -> None:
    schema = acme.schema()
    assert schema["$id"] == "https://maestro.conductor/schema/manifest-v1.json"
    assert set(schema["properties"]) == set(Manifest.model_fields)
    keys = acme.keys()
    k = PublicKey.from_pem(keys.keys[0].pem)
    assert k.keyid == keys.keys[0].keyid
    assert k.note_verifier_key(keys.log_origin) == keys.keys[0].note_verifier_key
