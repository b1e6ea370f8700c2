"""Transports carry events out of the process that made them: `sqlite` (the embedded log),
`kafka` (with the durable `spool` for outages) and `memory` (tests, embedding). `factory` picks
one from settings; `base` says how to add another."""
