"""The spec framework: `CommandSpec`, the registry, and the command/response decoders.

One module per concern: `patterns` (status words), `fields` (P1-P2, Le),
`vectors` (applet contexts, test vectors), `decoded`, `spec`, `response`,
`registry`, `session` (a trace). Import names from the module that defines them,
or the public ones from `apdu_specs`.

A `CommandSpec` declares one command (or one variant of it, e.g. SELECT by DF
name): its CLA class, INS, the P1-P2 values it applies to, the meaning of the
P1-P2 bit fields (`Field`, with enumerated values and ranges), the command and
response data as `construct` constructs, the Lc/Le rules, the status words it
may return, the clause it comes from, and its own test vectors.

P1 and P2 are read as one 16-bit word P1-P2 (P1 in the high byte), so a field
can sit in P1 (`p1(...)`), in P2 (`p2(...)`) or across both (`p1p2(...)`, e.g.
a 15-bit offset or a tag). Bits that neither the match nor a field covers are
RFU: a decoder reports them when set, and generators leave them 0.

A `Registry` indexes specs by INS and picks the most specific match by CLA and
P1-P2 (the number of bits a spec fixes); a spec bound to an applet
(`AppletContext`, by AID) wins when the decoder knows that applet is selected,
and is left out when another applet is. The default registry holds every
module of this package that defines `SPECS`.

Decoding never raises on odd input: malformed APDUs, RFU values, data that does
not parse and unexpected status words all come back as `Decoded.issues`.
"""
