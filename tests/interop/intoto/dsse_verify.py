"""Verifies a DSSE envelope (an in-toto Statement, e.g. SLSA provenance) with securesystemslib
and one PEM public key, as a third party would. Prints the payload's predicateType.

usage: dsse_verify.py ENVELOPE.json PUBLIC_KEY.pem    exit 0 verified, 1 not, 2 usage
"""
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2], "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()))
    with open(sys.argv[1], encoding="utf-8") as f:
        envelope = Envelope.from_dict(json.load(f))
    try:
        envelope.verify([key], 1)
    except Exception as e:  # any failure is a verdict, not a crash
        print(f"fail: {type(e).__name__}: {e}")
        return 1
    statement = json.loads(envelope.payload)
    print(statement["predicateType"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
