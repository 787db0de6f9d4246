"""Verifies a receipt file offline with a trusted public key, printing every check:

    python verify_receipt.py receipt.json appliance.pem [--origin ORIGIN]

Exits 0 when every check passes, 4 otherwise (like `maestro verify-receipt`)."""

import argparse
import sys

from maestro_sdk import PublicKey, verify_receipt_file


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("receipt")
    ap.add_argument("key", nargs="+")
    ap.add_argument("--origin")
    a = ap.parse_args()
    keys = [PublicKey.from_pem(open(k).read()) for k in a.key]
    report = verify_receipt_file(a.receipt, keys, a.origin)
    for c in report.checks:
        print(f"{c.outcome:8} {c.name:11} {c.detail}")
    print("valid" if report.valid else "NOT valid")
    return 0 if report.valid else 4


if __name__ == "__main__":
    sys.exit(main())
