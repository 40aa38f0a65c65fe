"""What the tests of the calls the line places share: numbers, and the carrier's Calls
resource reply."""

from __future__ import annotations

import uuid

ACCOUNT = "AC" + "1" * 32
PUBLIC = "https://ivr.example.org"
LINE_NUMBER = "+85523999000"
NUMBER = "+85512345678"
FORMS = ("+85512345678", "85512345678", "012345678", "012 345 678", "12 345 678")


def calls_resource_reply(carrier: str, form: dict[str, str]) -> dict:
    """A Calls resource as POST .../Calls.json answers it (201), after Twilio's documented
    JSON (twilio.com/docs/voice/api/call-resource); Somleng answers the same fields with a
    UUID sid."""
    sid = "CA" + uuid.uuid4().hex if carrier == "twilio" else str(uuid.uuid4())
    base = "/2010-04-01/Accounts/" + ACCOUNT
    return {
        "account_sid": ACCOUNT, "annotation": None, "answered_by": None,
        "api_version": "2010-04-01", "caller_name": None, "date_created": None,
        "date_updated": None, "direction": "outbound-api", "duration": None, "end_time": None,
        "forwarded_from": None, "from": form["From"], "from_formatted": form["From"],
        "group_sid": None, "parent_call_sid": None, "phone_number_sid": None, "price": None,
        "price_unit": "USD", "sid": sid, "start_time": None, "status": "queued",
        "subresource_uris": {"notifications": f"{base}/Calls/{sid}/Notifications.json",
                             "recordings": f"{base}/Calls/{sid}/Recordings.json"},
        "queue_time": "0", "to": form["To"], "to_formatted": form["To"],
        "trunk_sid": None, "uri": f"{base}/Calls/{sid}.json",
    }
