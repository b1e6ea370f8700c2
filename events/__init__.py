"""The provgraph event contract: OpenLineage 2-0-x RunEvents plus provgraph facets.

`events/` knows nothing about graphs or the SDK: it defines the wire format (`model`, `facets`,
`request`), the one serialiser (`serde`), topic names (`topics`), the error tree (`errors`) and
the transports that carry events (`transport/`). Import from those modules directly; this
package stays empty so importing one of them does not load the others.
"""
