"""Verifies the first DKIM signature of the message on stdin with dkimpy, an implementation
independent of nodemailer's signer and of mailauth. argv[1]: JSON {"<selector>._domainkey.<domain>": "<TXT>"}.
Prints "pass" or "fail: <reason>"; exits 0 on pass, 1 on fail, 2 when dkimpy is missing."""
import json
import sys

try:
    import dkim
except ImportError:
    print("dkimpy is not installed (pip install dkimpy==1.1.8)")
    sys.exit(2)

records = {name.rstrip(".").lower(): txt for name, txt in json.loads(sys.argv[1]).items()}


def dnsfunc(name, timeout=5):
    key = (name.decode() if isinstance(name, bytes) else name).rstrip(".").lower()
    txt = records.get(key)
    return txt.encode() if txt is not None else None


message = sys.stdin.buffer.read()
verifier = dkim.DKIM(message)
try:
    ok = verifier.verify(dnsfunc=dnsfunc)
except dkim.DKIMException as err:
    print(f"fail: {err}")
    sys.exit(1)
print("pass" if ok else "fail: signature or body hash mismatch")
sys.exit(0 if ok else 1)
