"""The locustfile ccharness's workers run (locustfiles/sip_load.py re-exports it).

    locust -f locustfiles/sip_load.py --headless -u 8 -r 8 -t 30s \
        --sip-target sip:svc@127.0.0.1:5060 --sip-hold uniform:5:15 --sip-codecs pcmu,g722

Distributed: ``--master`` here and ``--worker`` in as many processes as you like;
each worker runs its own PJSUA2 engine processes (4 calls each). The ApiUser runs
only when --api-base-url is given (``ApiUser`` on the command line selects it).
"""

from locust import events

from harness.load import plugin, settings
from harness.load.users import ApiUser, SipCaller  # noqa: F401 - Locust finds them here


@events.init_command_line_parser.add_listener
def _options(parser, **_kw):
    settings.add_arguments(parser)


@events.init.add_listener
def _init(environment, **_kw):
    plugin.install(environment)
