"""The web edge: the gateway (one origin for every service's REST API) and the local mail server."""
