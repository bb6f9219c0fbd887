"""cardemu's server roles: small HTTP JSON services on loopback (see `host.servers.web`)."""
