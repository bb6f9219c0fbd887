"""Seed 003 (JP 6820082 B2): a SIM profile moved between embedded secure elements, all or nothing.

Roles (each `cardemu server move-*`): `provider` (the move's durable log),
`manager` (one per eSE), `resolver`, `mno` (user authentication), `auc`.
The eSE side is `applets.profile_move`; the scenario is `profile-move`.
"""
