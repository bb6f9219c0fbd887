"""Built-in fuzzing: spec-driven, stateful, with invariants checked after every APDU.

- `targets`: what the fuzzer knows about a card and its applets (states, secrets, specs).
- `session`: an episode on one card (events, responses, replay, clones).
- `oracles`: the invariants checked after every step, each a named oracle.
- `generators`, `mutators`, `corpus`: where command APDUs come from.
- `der`: structure-aware mutation of DER messages as TLV trees (the `asn1` engine);
  `rsp_seeds`: the valid ES10 requests and ES9+ bodies it starts from.
- `watchdog`: the in-process per-command time and memory bound (a hang is a finding).
- `server`: the SM-DP+ fuzzed over loopback HTTP in a child process (`--smdpp`).
- `coverage`: line/arc coverage of the applets under test (sys.settrace).
- `engine`: the campaign loop, minimisation, replay of finding scripts.
- `stateful`: hypothesis state machines over the same targets and oracles.
- `report`: campaign figures, finding scripts and traces.
"""
