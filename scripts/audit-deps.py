"""`make lint`'s dependency audit: pip-audit over the pinned requirements.lock.

Fails on a known vulnerability. Where the vulnerability data cannot be fetched (an offline
machine, a mirror without PyPI's JSON API), it says so loudly and passes: a missing network is
not a finding, and lint must still run offline. Usage: audit-deps.py <pip-audit> <lock file>.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main(pip_audit: str, lock: str) -> int:
    run = subprocess.run(  # noqa: S603 - our own venv's pip-audit, arguments fixed here
        [
            pip_audit,
            "--requirement",
            lock,
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: NOT AUDITED: could not fetch vulnerability data ({last})")
        return 0
    found = [d for d in report["dependencies"] if d.get("vulns")]
    skipped = [d for d in report["dependencies"] if "skip_reason" in d]
    audited = len(report["dependencies"]) - len(skipped)
    for dependency in found:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            print(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    if found:
        print(f"pip-audit: {len(found)} pinned dependencies have known vulnerabilities")
        return 1
    if skipped:
        print(
            f"pip-audit: NOT AUDITED: {len(skipped)} of {len(report['dependencies'])} "
            f"dependencies, no data for them (first: {skipped[0]['skip_reason']})"
        )
    if audited:
        print(f"pip-audit: no known vulnerabilities in the {audited} audited dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
