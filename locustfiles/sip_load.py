"""Tagged SIP load (and optional REST reads) for plain ``locust -f``.

    locust -f locustfiles/sip_load.py --headless -u 8 -r 8 -t 30s SipCaller \
        --sip-target sip:svc@127.0.0.1:5060 --sip-hold uniform:5:15 --sip-codecs pcmu,g722

Distributed: ``--master`` here and ``--worker`` in as many processes as you like;
each worker runs its own PJSUA2 engine processes (4 calls each). ``ApiUser`` reads
the platform REST API (give --api-base-url, --api-client-id, --api-trunk-id, ...).
The definitions live in harness/load/locustfile.py, which ccharness's workers run.
"""

from harness.load.locustfile import ApiUser, SipCaller, _init, _options  # noqa: F401
