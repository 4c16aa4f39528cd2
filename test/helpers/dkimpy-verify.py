"""Verifies the first DKIM signature of each message with dkimpy, an implementation independent of
nodemailer's signer and of mailauth. stdin: a JSON list of base64 messages; argv[1]: JSON
{"<selector>._domainkey.<domain>": "<TXT>"}, the only DNS there is. Prints one line per message,
"pass" or "fail: <reason>"; exits 2 when dkimpy is missing."""
import base64
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


def verdict(message):
    try:
        ok = dkim.DKIM(message).verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as err:
        return f"fail: {err}"
    return "pass" if ok else "fail: signature or body hash mismatch"


for encoded in json.load(sys.stdin):
    print(verdict(base64.b64decode(encoded)))
