"""Built-in fuzzing: spec-driven, stateful, with invariants checked after every APDU.

- `targets`: what the fuzzer knows about a card and its applets (states, secrets, specs).
- `session`: an episode on one card (events, responses, replay, clones).
- `oracles`: the invariants checked after every step, each a named oracle.
- `generators`, `mutators`, `corpus`: where command APDUs come from.
- `coverage`: line/arc coverage of the applets under test (sys.settrace).
- `engine`: the campaign loop, minimisation, replay of finding scripts.
- `stateful`: hypothesis state machines over the same targets and oracles.
- `report`: campaign figures, finding scripts and traces.
"""
