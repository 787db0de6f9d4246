"""Validates manifest files locally with the appliance's exact rules and prints every
problem with its path and hint; exits 3 when one is invalid (like `maestro validate`).

    python validate_manifest.py workflow.yaml [more.yaml…]
"""

import sys

from maestro_sdk import Manifest, ManifestInvalid


def main(paths: list[str]) -> int:
    status = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            m = Manifest.from_text(text)
        except ManifestInvalid as e:
            status = 3
            print(f"{path}: invalid")
            for p in e.problems:
                print(f"  {p.code:18} {p}" + (f"\n  {'':18} hint: {p.hint}" if p.hint else ""))
            continue
        print(f"{path}: valid ({m.name}@{m.version}, {len(m.tasks)} tasks in {m.region})")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
