"""Sample applets: small, complete, and used by the tests, the demo card and the benchmark.

- `PurseApplet`: a PIN-protected purse whose credit/debit updates three persistent
  fields in one transaction (the tear-test subject).
- `EchoApplet`: echoes and generates data, for chaining, GET RESPONSE and
  extended-length paths.
- `CounterServer` / `CounterClient`: a Shareable interface across the firewall.
"""

from applets.sample.counter import CounterClient, CounterInterface, CounterServer
from applets.sample.echo import EchoApplet
from applets.sample.purse import PurseApplet

PURSE_AID = bytes.fromhex("F043415244454D5501")
ECHO_AID = bytes.fromhex("F043415244454D5502")
COUNTER_SERVER_AID = bytes.fromhex("F043415244454D5503")
COUNTER_CLIENT_AID = bytes.fromhex("F043415244454D5504")

__all__ = [
    "COUNTER_CLIENT_AID",
    "COUNTER_SERVER_AID",
    "CounterClient",
    "CounterInterface",
    "CounterServer",
    "ECHO_AID",
    "EchoApplet",
    "PURSE_AID",
    "PurseApplet",
]
